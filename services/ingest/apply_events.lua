-- Apply a batch of normalized ingest events atomically per event, all in one round trip.
--
-- Every name this script shares with Python (outcome statuses, new-item and outcome fields, the
-- item fields it reads, the updatable fields, event kinds, modes) comes from the header that
-- services/ingest/script_contract.py generates from shared/keys.py and prepends: STATUS, NEW_ITEM,
-- OUTCOME, ITEM, ITEM_STATUS, UPDATABLE, KIND, MODE. No such name is written here as a literal.
--
-- Exactly-once effect comes from two checks made in the same atomic step as the writes:
--   * the event's outcome record: an entry already applied (a redelivery) changes nothing;
--   * the dedupe key `feedback:external:{source}:{external_id}` (or the item hash itself when the
--     source has no external id): a second event about a known item is a duplicate, or an in-place
--     update when the event says so.
--
-- KEYS[1] feedback:created  KEYS[2] feedback:unclustered  KEYS[3] stream:feedback:new
-- KEYS[4] feedback:sources; then per event 4 keys: outcomes hash (the event's hour; field = entry
-- id, value = JSON), item hash key, dedupe key ('' when none), source zset key. With tagged names
-- a key an event does not use is ARGV[2] instead of '' (a cluster refuses a key outside the slot,
-- and '' hashes to slot 0): the item-hash prefix is in the partition's slot and never a key.
-- ARGV[1] outcome ttl seconds, ARGV[2] the item-hash key prefix (to find a legacy item by id),
-- ARGV[3] schema version of new-item events, ARGV[4] mode: MODE.apply (the worker), MODE.replay
-- (a backfill through a newer normalizer: every event is applied again, a known item is updated in
-- place), MODE.predict (what replay would do, writing nothing), ARGV[5] in predict mode a JSON
-- object of the writes earlier predictions made (key -> string or hash), so a long dry run sees
-- its own effects; then per event 13 arguments and its item hash fields, flat:
--   check_prior ('1': the entry may have been applied before, look up its outcome; '0' for a first
--   delivery), kind, entry_id, item_id, source, score, created_at, request_id, update_existing
--   ('1'|'0'), create_if_new ('1'|'0'), revision ('' or a number), reason, field count n, then
--   n/2 name-value pairs.
-- Flat arguments cost Redis less than decoding a JSON document per event.
-- Returns one flat array, status then item id per event (Redis converts a flat array of strings
-- much faster than an array of pairs); in predict mode {that array, JSON of the predicted writes}.

local ttl, item_prefix, version, mode = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local replay, predict = mode ~= MODE.apply, mode == MODE.predict
local shadow = predict and cjson.decode(ARGV[5]) or nil
local predicted = {}
local created_key, unclustered_key, new_items_key, sources_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local FIXED_ARGS = 13

local sources_seen = {}

-- Writes that no decision in this call reads are collected and sent once per key at the end (one
-- ZADD for all new items instead of one each): fewer commands is most of this script's cost. They
-- are flushed even when an event fails, so every event before it lands whole, as if written at once.
local later = {created = {}, by_source = {}, outcomes = {}, unclustered = {}, unclustered_order = {}}

local function append_pair(lists, key, a, b)
  local list = lists[key]
  if not list then
    list = {}
    lists[key] = list
  end
  list[#list + 1] = a
  list[#list + 1] = b
end

local function mark_unclustered(item_id, waiting)
  if later.unclustered[item_id] == nil then
    later.unclustered_order[#later.unclustered_order + 1] = item_id
  end
  later.unclustered[item_id] = waiting
end

local function in_chunks(command, key, values)
  for i = 1, #values, 1000 do
    redis.call(command, key, unpack(values, i, math.min(i + 999, #values)))
  end
end

local function flush_later()
  in_chunks('ZADD', created_key, later.created)
  for key, pairs_ in pairs(later.by_source) do in_chunks('ZADD', key, pairs_) end
  for key, pairs_ in pairs(later.outcomes) do
    in_chunks('HSET', key, pairs_)
    redis.call('EXPIRE', key, ttl)
  end
  local waiting, closed = {}, {}
  for _, item_id in ipairs(later.unclustered_order) do
    if later.unclustered[item_id] then waiting[#waiting + 1] = item_id else closed[#closed + 1] = item_id end
  end
  in_chunks('SADD', unclustered_key, waiting)
  in_chunks('SREM', unclustered_key, closed)
end

-- The reads that decide an outcome and the writes later decisions read go through these, so that
-- in predict mode a decision sees the predicted writes (in `shadow`) and nothing is written.
local function get(key)
  if shadow and shadow[key] ~= nil then return shadow[key] end
  return redis.call('GET', key)
end

local function set(key, value)
  if predict then
    shadow[key] = value
    predicted[key] = value
  else
    redis.call('SET', key, value)
  end
end

local function exists(key)
  if shadow and shadow[key] ~= nil then return true end
  return redis.call('EXISTS', key) == 1
end

local function hmget(key, names)
  local values = redis.call('HMGET', key, unpack(names))
  local overlay = shadow and shadow[key]
  if overlay then
    for i, name in ipairs(names) do
      if overlay[name] ~= nil then values[i] = overlay[name] end
    end
  end
  return values
end

local function hset(key, flat)
  if predict then
    local hash = shadow[key] or {}
    for i = 1, #flat, 2 do hash[flat[i]] = flat[i + 1] end
    shadow[key] = hash
    predicted[key] = hash
  else
    redis.call('HSET', key, unpack(flat))
  end
end

local function write(...)
  if not predict then redis.call(...) end
end

local function record(e, status, item_id, reason)
  if not predict then
    local outcome = cjson.encode({[OUTCOME.status] = status, [OUTCOME.feedback_id] = item_id,
                                  [OUTCOME.reason] = reason})
    append_pair(later.outcomes, e.outcome_key, e.entry_id, outcome)
  end
  return {status, item_id}
end

-- The item an event is about, if stored: by the dedupe key (an item with an external id is always
-- written with its dedupe key, legacy items included), else by the item hash itself.
local function existing_item(e)
  if e.dedupe_key ~= '' then
    return get(e.dedupe_key) or nil
  end
  if exists(e.item_key) then
    return string.sub(e.item_key, #item_prefix + 1)
  end
  return nil
end

-- The common case of the worker, a new item with an external id, in one command: the dedupe key is
-- set to this item unless it already names one, which is returned (SET NX GET).
local function claim_or_existing(e)
  if predict or e.dedupe_key == '' or not e.create_if_new then
    return existing_item(e), false
  end
  local known = redis.call('SET', e.dedupe_key, e.item_id, 'NX', 'GET')
  if known then return known, false end
  return nil, true
end

local function field_value(e, name)
  for i = e.first, e.last, 2 do
    if ARGV[i] == name then return ARGV[i + 1] end
  end
  return nil
end

local function update(e, item_id)
  local key = item_prefix .. item_id
  local names = {ITEM.revision}
  for i = e.first, e.last, 2 do
    if UPDATABLE[ARGV[i]] then names[#names + 1] = ARGV[i] end
  end
  local stored = hmget(key, names)
  if e.revision ~= '' and stored[1] and tonumber(stored[1]) > tonumber(e.revision) then
    return STATUS.duplicate, 'older than the stored revision'
  end
  local args = {}
  for i = 2, #names do
    local value = field_value(e, names[i])
    if stored[i] ~= value then
      args[#args + 1] = names[i]
      args[#args + 1] = value
    end
  end
  if #args == 0 then
    return STATUS.unchanged, ''
  end
  if e.revision ~= '' then
    args[#args + 1] = ITEM.revision
    args[#args + 1] = e.revision
  end
  hset(key, args)
  if field_value(e, ITEM.status) == ITEM_STATUS.closed then
    mark_unclustered(item_id, false)
  end
  return STATUS.updated, ''
end

local function create(e, claimed)
  if predict then
    hset(e.item_key, {unpack(ARGV, e.first, e.last)})
  else
    local reply = redis.pcall('HSET', e.item_key, unpack(ARGV, e.first, e.last))
    if type(reply) == 'table' and reply.err then
      -- Undo this call's claim of the dedupe key, so a retry does not take the item for stored.
      if claimed then redis.call('DEL', e.dedupe_key) end
      error(reply)
    end
  end
  later.created[#later.created + 1] = e.score
  later.created[#later.created + 1] = e.item_id
  append_pair(later.by_source, e.source_key, e.score, e.item_id)
  if e.dedupe_key ~= '' and not claimed then
    set(e.dedupe_key, e.item_id)
  end
  if not sources_seen[e.source] then
    write('SADD', sources_key, e.source)
    sources_seen[e.source] = true
  end
  if field_value(e, ITEM.status) ~= ITEM_STATUS.closed then
    mark_unclustered(e.item_id, true)
    write('XADD', new_items_key, '*', NEW_ITEM.version, version, NEW_ITEM.id, e.item_id,
          NEW_ITEM.source, e.source, NEW_ITEM.created_at, e.created_at, NEW_ITEM.event_id, e.entry_id,
          NEW_ITEM.request_id, e.request_id)
  end
end

local function apply(e)
  if e.check_prior and not replay then
    local prior = redis.call('HGET', e.outcome_key, e.entry_id)
    if prior then
      prior = cjson.decode(prior)
      return {prior[OUTCOME.status], prior[OUTCOME.feedback_id] or ''}
    end
  end
  if e.kind == KIND.ignored then
    return record(e, STATUS.ignored, '', e.reason)
  end
  local known, claimed = claim_or_existing(e)
  if known then
    if e.update_existing or replay then
      local status, reason = update(e, known)
      return record(e, status, known, reason)
    end
    return record(e, STATUS.duplicate, known, '')
  end
  if not e.create_if_new then
    return record(e, STATUS.ignored, '', e.reason)
  end
  create(e, claimed)
  return record(e, STATUS.created, e.item_id, '')
end

local results = {}

local function apply_all()
  local a, k = 6, 5
  while a <= #ARGV do
    local count = tonumber(ARGV[a + 12])
    local dedupe_key = KEYS[k + 2]
    if dedupe_key == item_prefix then dedupe_key = '' end
    local outcome = apply({
      outcome_key = KEYS[k], item_key = KEYS[k + 1], dedupe_key = dedupe_key, source_key = KEYS[k + 3],
      check_prior = ARGV[a] == '1', kind = ARGV[a + 1], entry_id = ARGV[a + 2], item_id = ARGV[a + 3],
      source = ARGV[a + 4], score = ARGV[a + 5], created_at = ARGV[a + 6], request_id = ARGV[a + 7],
      update_existing = ARGV[a + 8] == '1', create_if_new = ARGV[a + 9] == '1', revision = ARGV[a + 10],
      reason = ARGV[a + 11],
      first = a + FIXED_ARGS, last = a + FIXED_ARGS + count - 1,
    })
    results[#results + 1] = outcome[1]
    results[#results + 1] = outcome[2]
    a, k = a + FIXED_ARGS + count, k + 4
  end
end

local ok, failure = pcall(apply_all)
if predict then
  if not ok then error(failure) end
  return {results, cjson.encode(predicted)}
end
flush_later()
if not ok then error(failure) end
return results
