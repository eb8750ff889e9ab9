-- Apply one batch's cluster assignment atomically, only while the caller still holds the lock.
-- KEYS[1] lock  KEYS[2] clusters:all  KEYS[3] clusters:by_size  KEYS[4] clusters:by_created
-- KEYS[5] feedback:unclustered
-- ARGV[1] JSON {token, clusters: [{id, key, items_key, items, fields, initial, created_score}],
--                items: [{id, key, cluster}], groups: [{key, item}]}
-- A group key names the first item with an error fingerprint (SET NX: the first one stays).
-- Every write is keyed (SADD, HSET, ZADD), so applying the same document twice changes nothing.
local unclustered_key = KEYS[5]
local doc = cjson.decode(ARGV[1])
if not holds_lock(doc.token) then
  return redis.error_reply('LOCKLOST assignment lock expired before the write')
end


for _, c in ipairs(doc.clusters) do
  redis.call('SADD', c.items_key, unpack(c.items))
  upsert_cluster(c)
end

for _, item in ipairs(doc.items) do
  if redis.call('EXISTS', item.key) == 1 then
    redis.call('HSET', item.key, 'clustered', 'true', 'cluster_id', item.cluster)
  end
  redis.call('SREM', unclustered_key, item.id)
end

for _, group in ipairs(doc.groups) do
  redis.call('SET', group.key, group.item, 'NX')
end
return #doc.items
