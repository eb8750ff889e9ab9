-- Apply one consolidation pass atomically, only while the caller still holds the lock: move items
-- between clusters, rewrite the changed clusters, delete the ones left empty, advance the pass
-- cursor. A move whose item is no longer in the cluster it was planned from is skipped (the
-- caller re-read every owner under the lock, so that only guards a bug, never a race).
-- KEYS[1] lock  KEYS[2] clusters:all  KEYS[3] clusters:by_size  KEYS[4] clusters:by_created
-- KEYS[5] graph:consolidated cursor
-- ARGV[1] JSON {token, cursor, feedback_prefix, moves: [{id, from_items, to, to_items}],
--   clusters: [{id, key, items_key, fields, initial, created_score}],
--   gone: [{id, key, items_key}]}
-- Returns {items moved, clusters deleted}.
local cursor_key = KEYS[5]
local doc = cjson.decode(ARGV[1])
if not holds_lock(doc.token) then
  return redis.error_reply('LOCKLOST assignment lock expired before the pass commit')
end

local moved = 0
for _, move in ipairs(doc.moves) do
  local item_key = doc.feedback_prefix .. move.id
  if redis.call('SREM', move.from_items, move.id) == 1 then
    redis.call('SADD', move.to_items, move.id)
    if redis.call('EXISTS', item_key) == 1 then
      redis.call('HSET', item_key, 'cluster_id', move.to)
    end
    moved = moved + 1
  end
end

for _, c in ipairs(doc.clusters) do
  upsert_cluster(c)
end

local deleted = 0
for _, c in ipairs(doc.gone) do
  if redis.call('SCARD', c.items_key) == 0 then
    drop_cluster(c)
    deleted = deleted + 1
  end
end

redis.call('SET', cursor_key, doc.cursor)
return {moved, deleted}
