-- Apply one batch's cluster assignment atomically, only while the caller still holds the lock.
-- KEYS[1] lock  KEYS[2] clusters:all  KEYS[3] clusters:by_size  KEYS[4] clusters:by_created
-- KEYS[5] feedback:unclustered
-- ARGV[1] JSON {token, clusters: [{id, key, items_key, items, fields, initial, created_score}],
--                items: [{id, key, cluster}]}
-- Every write is keyed (SADD, HSET, ZADD), so applying the same document twice changes nothing.
local lock_key, all_key, by_size_key, by_created_key, unclustered_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local doc = cjson.decode(ARGV[1])
if redis.call('GET', lock_key) ~= doc.token then
  return redis.error_reply('LOCKLOST assignment lock expired before the write')
end

local function flatten(map)
  local flat = {}
  for name, value in pairs(map) do
    flat[#flat + 1] = name
    flat[#flat + 1] = value
  end
  return flat
end

for _, c in ipairs(doc.clusters) do
  redis.call('SADD', c.items_key, unpack(c.items))
  local size = redis.call('SCARD', c.items_key)
  for name, value in pairs(c.initial) do
    redis.call('HSETNX', c.key, name, value)
  end
  local fields = flatten(c.fields)
  fields[#fields + 1] = 'size'
  fields[#fields + 1] = tostring(size)
  redis.call('HSET', c.key, unpack(fields))
  redis.call('SADD', all_key, c.id)
  redis.call('ZADD', by_size_key, size, c.id)
  redis.call('ZADD', by_created_key, 'NX', c.created_score, c.id)
end

for _, item in ipairs(doc.items) do
  if redis.call('EXISTS', item.key) == 1 then
    redis.call('HSET', item.key, 'clustered', 'true', 'cluster_id', item.cluster)
  end
  redis.call('SREM', unclustered_key, item.id)
end
return #doc.items
