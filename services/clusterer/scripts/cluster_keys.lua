-- Prepended to every cluster-writing script at load time (Redis scripts cannot import): the lock
-- fence and the writes that keep cluster:{id}, cluster:items:{id}, the three indexes and the
-- item -> cluster authority in step. Every key a script touches is in KEYS (a Redis Cluster routes
-- by them and refuses any other): the document names a cluster's keys by their position in KEYS.
-- KEYS[1] lock  KEYS[2] clusters:all  KEYS[3] clusters:by_size  KEYS[4] clusters:by_created
-- KEYS[5] cluster:of
local lock_key, all_key, by_size_key, by_created_key, owner_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

local function holds_lock(token)
  return redis.call('GET', lock_key) == token
end

local function flatten(map, flat)
  for name, value in pairs(map) do
    flat[#flat + 1] = name
    flat[#flat + 1] = value
  end
  return flat
end

-- The caller's fields, the size counted from the member set (it wins over any stale size in
-- `fields`), and the by-size index, all at once.
local function write_cluster(c, fields)
  local size = redis.call('SCARD', KEYS[c.items_key])
  local flat = flatten(fields, {})
  flat[#flat + 1] = 'size'
  flat[#flat + 1] = tostring(size)
  redis.call('HSET', KEYS[c.key], unpack(flat))
  redis.call('ZADD', by_size_key, size, c.id)
  return size
end

-- A cluster as the caller planned it: fields set once at birth (HSETNX keeps a summarizer's label),
-- the planned fields and size, and its place in every index.
local function upsert_cluster(c)
  for name, value in pairs(c.initial) do
    redis.call('HSETNX', KEYS[c.key], name, value)
  end
  write_cluster(c, c.fields)
  redis.call('SADD', all_key, c.id)
  redis.call('ZADD', by_created_key, 'NX', c.created_score, c.id)
end

local function drop_cluster(c)
  redis.call('DEL', KEYS[c.key], KEYS[c.items_key])
  redis.call('SREM', all_key, c.id)
  redis.call('ZREM', by_size_key, c.id)
  redis.call('ZREM', by_created_key, c.id)
end
