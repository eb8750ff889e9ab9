-- Take items out of their clusters and out of the item -> cluster authority, atomically, only
-- while the caller still holds the lock. A cluster left empty is deleted everywhere; a shrunk one
-- gets the fields the caller recomputed. The caller has already re-enqueued the items in their
-- partitions (requeue_items.lua): a crash in between leaves them clustered AND queued, and the
-- clusterer then keeps their cluster; the other order could leave an item neither.
-- KEYS[1..5] as in the prelude, then every cluster and cluster:items key named below.
-- ARGV[1] JSON {token, clusters: [{id, key, items_key, remove, fields}], items}  (key, items_key:
--   positions in KEYS)
-- Returns the number of clusters deleted.
local doc = cjson.decode(ARGV[1])
if not holds_lock(doc.token) then
  return redis.error_reply('LOCKLOST assignment lock expired before the re-cluster')
end

local deleted = 0
for _, c in ipairs(doc.clusters) do
  for _, item_id in ipairs(c.remove) do
    redis.call('SREM', KEYS[c.items_key], item_id)
  end
  if redis.call('SCARD', KEYS[c.items_key]) == 0 then
    drop_cluster(c)
    deleted = deleted + 1
  else
    write_cluster(c, c.fields)
  end
end

for _, item_id in ipairs(doc.items) do
  redis.call('HDEL', owner_key, item_id)
end
return deleted
