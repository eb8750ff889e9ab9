-- Set a cluster's title and summary unless it was merged away meanwhile (never re-create a hash).
-- KEYS[1] cluster:{id}   ARGV[1] title   ARGV[2] summary
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HSET', KEYS[1], 'title', ARGV[1], 'summary', ARGV[2])
end
return -1
