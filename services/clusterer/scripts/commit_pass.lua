-- Apply one consolidation pass atomically, only while the caller still holds the lock: move items
-- between clusters (and in the item -> cluster authority), rewrite the changed clusters, delete
-- the ones left empty, advance the pass cursor. A move whose item is no longer in the cluster it
-- was planned from is skipped (the caller re-read every owner under the lock, so that only guards
-- a bug, never a race). The moved items' hashes are mirrored afterwards by mirror_items.lua.
-- KEYS[1..5] as in the prelude, KEYS[6] graph:consolidated cursor, then every cluster and
-- cluster:items key named below.
-- ARGV[1] JSON {token, cursor, moves: [{id, from_items, to, to_items}],
--   clusters: [{id, key, items_key, fields, initial, created_score}],
--   gone: [{id, key, items_key}]}  (key, items_key, from_items, to_items: positions in KEYS)
-- Returns {items moved, clusters deleted}.
local cursor_key = KEYS[6]
local doc = cjson.decode(ARGV[1])
if not holds_lock(doc.token) then
  return redis.error_reply('LOCKLOST assignment lock expired before the pass commit')
end

local moved = 0
for _, move in ipairs(doc.moves) do
  if redis.call('SREM', KEYS[move.from_items], move.id) == 1 then
    redis.call('SADD', KEYS[move.to_items], move.id)
    redis.call('HSET', owner_key, move.id, move.to)
    moved = moved + 1
  end
end

for _, c in ipairs(doc.clusters) do
  upsert_cluster(c)
end

local deleted = 0
for _, c in ipairs(doc.gone) do
  if redis.call('SCARD', KEYS[c.items_key]) == 0 then
    drop_cluster(c)
    deleted = deleted + 1
  end
end

redis.call('SET', cursor_key, doc.cursor)
return {moved, deleted}
