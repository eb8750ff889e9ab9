-- Take items out of their clusters and hand them back to the clusterer, atomically, only while the
-- caller still holds the lock. A cluster left empty is deleted everywhere; a shrunk one gets the
-- fields the caller recomputed. Each item that still exists becomes unclustered again and gets a
-- new-item event in the same script, so no crash can leave an item neither clustered nor queued.
-- KEYS[1] lock  KEYS[2] clusters:all  KEYS[3] clusters:by_size  KEYS[4] clusters:by_created
-- KEYS[5] feedback:unclustered  KEYS[6] stream:feedback:new
-- ARGV[1] JSON {token, feedback_prefix, version, event_fields (NewItemField names), clusters: [{id, key, items_key, remove, fields}], items}
-- Returns {items re-enqueued, clusters deleted}.
local unclustered_key, stream_key = KEYS[5], KEYS[6]
local doc = cjson.decode(ARGV[1])
if not holds_lock(doc.token) then
  return redis.error_reply('LOCKLOST assignment lock expired before the re-cluster')
end

local deleted = 0
for _, c in ipairs(doc.clusters) do
  for _, item_id in ipairs(c.remove) do
    redis.call('SREM', c.items_key, item_id)
  end
  if redis.call('SCARD', c.items_key) == 0 then
    drop_cluster(c)
    deleted = deleted + 1
  else
    write_cluster(c, c.fields)
  end
end

local requeued = 0
for _, item_id in ipairs(doc.items) do
  local item_key = doc.feedback_prefix .. item_id
  if redis.call('EXISTS', item_key) == 1 then
    local found = redis.call('HMGET', item_key, 'source', 'created_at')
    redis.call('HSET', item_key, 'clustered', 'false')
    redis.call('HDEL', item_key, 'cluster_id')
    redis.call('SADD', unclustered_key, item_id)
    local f = doc.event_fields
    redis.call('XADD', stream_key, '*', f.version, doc.version, f.id, item_id,
      f.source, found[1] or '', f.created_at, found[2] or '')
    requeued = requeued + 1
  end
end
return {requeued, deleted}
