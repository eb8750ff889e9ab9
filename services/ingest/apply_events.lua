-- Apply a batch of normalized ingest events atomically per event, all in one round trip.
--
-- Exactly-once effect comes from two checks made in the same atomic step as the writes:
--   * the event's outcome key: an entry already applied (a redelivery, a replay) changes nothing;
--   * the dedupe key `feedback:external:{source}:{external_id}` (or the item hash itself when the
--     source has no external id): a second event about a known item is a duplicate, or an in-place
--     update when the event says so.
--
-- KEYS[1] feedback:created   KEYS[2] feedback:unclustered   KEYS[3] stream:feedback:new
-- then per event 4 keys: outcomes hash (the event's hour; field = entry id, value = JSON), item hash
-- key, dedupe key ('' when none), source zset key.
-- ARGV[1] outcome ttl seconds, ARGV[2] the item-hash key prefix (to find a legacy item by id),
-- ARGV[3] schema version of new-item events, ARGV[4] '1' for a replay (a backfill through a newer
-- normalizer: every event is applied again, a known item is updated in place); then one JSON array
-- per event (one argument each keeps the client's encoding cost low):
--   [kind ('item' | 'ignored'), entry_id, item_id, source, score, created_at, request_id,
--    update_existing (1|0), create_if_new (1|0), revision ('' or a number), reason, {item hash fields}]
-- Returns per event: {status, item id}.

local ttl, item_prefix, version, replay = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4] == '1'
local created_key, unclustered_key, new_items_key = KEYS[1], KEYS[2], KEYS[3]
local UPDATABLE = {title = true, body = true, raw_text = true, metadata = true, status = true,
                   repo = true, github_issue_number = true, github_issue_url = true}

local expiring = {}

local function record(outcomes_key, entry_id, status, item_id, reason)
  local outcome = cjson.encode({status = status, feedback_id = item_id, reason = reason})
  redis.call('HSET', outcomes_key, entry_id, outcome)
  if not expiring[outcomes_key] then
    redis.call('EXPIRE', outcomes_key, ttl)
    expiring[outcomes_key] = true
  end
  return {status, item_id}
end

local function existing_item(item_key, dedupe_key)
  if dedupe_key ~= '' then
    local id = redis.call('GET', dedupe_key)
    if id then return id end
  end
  if redis.call('EXISTS', item_key) == 1 then
    return string.sub(item_key, #item_prefix + 1)
  end
  return nil
end

local function update(item_id, fields, revision)
  local key = item_prefix .. item_id
  local stored = redis.call('HGET', key, 'revision')
  if revision ~= '' and stored and tonumber(stored) > tonumber(revision) then
    return 'duplicate', 'older than the stored revision'
  end
  local args = {}
  for name, value in pairs(fields) do
    if UPDATABLE[name] and redis.call('HGET', key, name) ~= value then
      args[#args + 1] = name
      args[#args + 1] = value
    end
  end
  if #args == 0 then
    return 'unchanged', ''
  end
  if revision ~= '' then
    args[#args + 1] = 'revision'
    args[#args + 1] = revision
  end
  redis.call('HSET', key, unpack(args))
  if fields['status'] == 'closed' then
    redis.call('SREM', unclustered_key, item_id)
  end
  return 'updated', ''
end

local function create(e, fields, flat)
  if e.revision ~= '' then
    flat[#flat + 1] = 'revision'
    flat[#flat + 1] = e.revision
  end
  redis.call('HSET', e.item_key, unpack(flat))
  redis.call('ZADD', created_key, e.score, e.item_id)
  redis.call('ZADD', e.source_key, e.score, e.item_id)
  if e.dedupe_key ~= '' then
    redis.call('SET', e.dedupe_key, e.item_id)
  end
  if fields['status'] ~= 'closed' then
    redis.call('SADD', unclustered_key, e.item_id)
    redis.call('XADD', new_items_key, '*', 'v', version, 'id', e.item_id, 'source', e.source,
               'created_at', e.created_at, 'event_id', e.entry_id, 'request_id', e.request_id)
  end
end

local function apply(e, fields, flat)
  local prior = redis.call('HGET', e.outcome_key, e.entry_id)
  if prior and not replay then
    prior = cjson.decode(prior)
    return {prior.status, prior.feedback_id or ''}
  end
  if e.kind == 'ignored' then
    return record(e.outcome_key, e.entry_id, 'ignored', '', e.reason)
  end
  local known = existing_item(e.item_key, e.dedupe_key)
  if known then
    if e.update_existing or replay then
      local status, reason = update(known, fields, e.revision)
      return record(e.outcome_key, e.entry_id, status, known, reason)
    end
    return record(e.outcome_key, e.entry_id, 'duplicate', known, '')
  end
  if not e.create_if_new then
    return record(e.outcome_key, e.entry_id, 'ignored', '', e.reason)
  end
  create(e, fields, flat)
  return record(e.outcome_key, e.entry_id, 'created', e.item_id, '')
end

local results = {}
for k = 4, #KEYS, 4 do
  local a = cjson.decode(ARGV[4 + (k - 4) / 4 + 1])
  local e = {
    outcome_key = KEYS[k], item_key = KEYS[k + 1], dedupe_key = KEYS[k + 2], source_key = KEYS[k + 3],
    kind = a[1], entry_id = a[2], item_id = a[3], source = a[4], score = a[5], created_at = a[6],
    request_id = a[7], update_existing = a[8] == 1, create_if_new = a[9] == 1, revision = a[10],
    reason = a[11],
  }
  local fields, flat = a[12], {}
  for name, value in pairs(fields) do
    flat[#flat + 1] = name
    flat[#flat + 1] = value
  end
  results[#results + 1] = apply(e, fields, flat)
end
return results
