-- Set a cluster's keywords unless it was merged away meanwhile (never re-create a hash).
-- KEYS[1] cluster:{id}   ARGV[1] keywords (JSON list)
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HSET', KEYS[1], 'keywords', ARGV[1])
end
return -1
