-- Fold clusters into their merge targets atomically, only while the caller still holds the lock.
-- KEYS[1] lock  KEYS[2] clusters:all  KEYS[3] clusters:by_size  KEYS[4] clusters:by_created
-- ARGV[1] JSON {token, feedback_prefix, groups: [{target: {id, key, items_key}, fields, created_score,
--                absorbed: [{id, key, items_key}]}]}
-- Returns, per group, the ids of the items that moved (so the vector index can be re-pointed).
local lock_key, all_key, by_size_key, by_created_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local doc = cjson.decode(ARGV[1])
if redis.call('GET', lock_key) ~= doc.token then
  return redis.error_reply('LOCKLOST assignment lock expired before the merge')
end

local moved_per_group = {}
for _, group in ipairs(doc.groups) do
  local target = group.target
  local moved = {}
  for _, source in ipairs(group.absorbed) do
    for _, item_id in ipairs(redis.call('SMEMBERS', source.items_key)) do
      local item_key = doc.feedback_prefix .. item_id
      if redis.call('EXISTS', item_key) == 1 then
        redis.call('HSET', item_key, 'cluster_id', target.id)
      end
      moved[#moved + 1] = item_id
    end
    redis.call('SUNIONSTORE', target.items_key, target.items_key, source.items_key)
    redis.call('DEL', source.key, source.items_key)
    redis.call('SREM', all_key, source.id)
    redis.call('ZREM', by_size_key, source.id)
    redis.call('ZREM', by_created_key, source.id)
  end
  local size = redis.call('SCARD', target.items_key)
  local fields = {'size', tostring(size)}
  for name, value in pairs(group.fields) do
    fields[#fields + 1] = name
    fields[#fields + 1] = value
  end
  redis.call('HSET', target.key, unpack(fields))
  redis.call('ZADD', by_size_key, size, target.id)
  redis.call('ZADD', by_created_key, group.created_score, target.id)
  moved_per_group[#moved_per_group + 1] = moved
end
return moved_per_group
