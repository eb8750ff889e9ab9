-- Hand items of ONE partition back to the clusterer: each item that still exists says it is not
-- clustered, joins the partition's unclustered set and gets a new-item event, in one step, so no
-- crash leaves an item marked unclustered without an event. Items already gone are skipped.
-- KEYS[1] feedback:unclustered  KEYS[2] stream:feedback:new  KEYS[2 + i] feedback:<id i>
-- ARGV[1] JSON {version, event_fields (NewItemField names), items: [id i]}
-- Returns the number of items re-enqueued.
local unclustered_key, stream_key = KEYS[1], KEYS[2]
local doc = cjson.decode(ARGV[1])
local f = doc.event_fields
local requeued = 0
for i, item_id in ipairs(doc.items) do
  local item_key = KEYS[2 + i]
  if redis.call('EXISTS', item_key) == 1 then
    local found = redis.call('HMGET', item_key, 'source', 'created_at')
    redis.call('HSET', item_key, 'clustered', 'false')
    redis.call('HDEL', item_key, 'cluster_id')
    redis.call('SADD', unclustered_key, item_id)
    redis.call('XADD', stream_key, '*', f.version, doc.version, f.id, item_id,
      f.source, found[1] or '', f.created_at, found[2] or '')
    requeued = requeued + 1
  end
end
return requeued
