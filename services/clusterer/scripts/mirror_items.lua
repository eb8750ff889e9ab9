-- Mirror the clusterer's authority (cluster:of) onto the items of ONE partition, after the fenced
-- cluster write: each item that still exists says `clustered` and its `cluster_id` (a deleted item
-- is never re-created), and leaves the partition's unclustered set. Keyed writes: running it again
-- (a redelivered batch after a crash before it) changes nothing.
-- KEYS[1] the partition's feedback:unclustered  KEYS[1 + i] feedback:<id i>
-- ARGV[2i - 1] item id i  ARGV[2i] its cluster id
local unclustered_key = KEYS[1]
for i = 2, #KEYS do
  local item_id, cluster_id = ARGV[2 * i - 3], ARGV[2 * i - 2]
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('HSET', KEYS[i], 'clustered', 'true', 'cluster_id', cluster_id)
  end
  redis.call('SREM', unclustered_key, item_id)
end
return #KEYS - 1
