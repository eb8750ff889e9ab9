-- Apply one batch's cluster assignment atomically, only while the caller still holds the lock:
-- the clusters, their indexes and the item -> cluster authority, all in the clusterer's slot. The
-- items' own hashes (in their partitions) are mirrored afterwards by mirror_items.lua.
-- KEYS[1..5] as in the prelude, then every cluster, cluster:items and fingerprint key named below.
-- ARGV[1] JSON {token, clusters: [{id, key, items_key, items, fields, initial, created_score}],
--                items: [{id, cluster}], groups: [{key, item}]}  (key, items_key: positions in KEYS)
-- A group key names the first item with an error fingerprint (SET NX: the first one stays).
-- Every write is keyed (SADD, HSET, ZADD), so applying the same document twice changes nothing.
local doc = cjson.decode(ARGV[1])
if not holds_lock(doc.token) then
  return redis.error_reply('LOCKLOST assignment lock expired before the write')
end

for _, c in ipairs(doc.clusters) do
  redis.call('SADD', KEYS[c.items_key], unpack(c.items))
  upsert_cluster(c)
end

for _, item in ipairs(doc.items) do
  redis.call('HSET', owner_key, item.id, item.cluster)
end

for _, group in ipairs(doc.groups) do
  redis.call('SET', KEYS[group.key], group.item, 'NX')
end
return #doc.items
