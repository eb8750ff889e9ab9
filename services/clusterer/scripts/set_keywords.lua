-- Set each cluster's keywords unless it was merged away meanwhile (never re-create a hash).
-- KEYS[i] cluster:{id i}   ARGV[i] its keywords (JSON list)
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    redis.call('HSET', key, 'keywords', ARGV[i])
  end
end
return #KEYS
