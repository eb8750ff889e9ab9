-- Fold clusters into their merge targets atomically, only while the caller still holds the lock.
-- KEYS[1] lock  KEYS[2] clusters:all  KEYS[3] clusters:by_size  KEYS[4] clusters:by_created
-- ARGV[1] JSON {token, feedback_prefix, groups: [{target: {id, key, items_key}, fields, created_score,
--                absorbed: [{id, key, items_key}]}]}
-- Returns, per group, the ids of the items that moved (so the vector index can be re-pointed).
local doc = cjson.decode(ARGV[1])
if not holds_lock(doc.token) then
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
    drop_cluster(source)
  end
  write_cluster(target, group.fields)
  redis.call('ZADD', by_created_key, group.created_score, target.id)
  moved_per_group[#moved_per_group + 1] = moved
end
return moved_per_group
