-- Append one partition's share of a batch to its stream in one step, on a Redis Cluster.
--
-- A cluster runs a MULTI only within one slot, and redis-py's transactional cluster pipeline costs
-- a thread and an event loop per queued command (about 1,500 events/s a process, bench/cluster_ingest.py).
-- A script runs whole: nothing interleaves, and a server short of memory refuses it before its
-- first write, so a share is stored all or not at all, as a MULTI would.
-- KEYS[1] the stream. ARGV: per entry its field count n, then n/2 name-value pairs.
-- Returns the entry ids, in order.
local ids, i = {}, 1
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return ids
