-- Move entries to the dead-letter stream and ack them, in one atomic step, so an entry is never
-- both lost and acked, nor dead-lettered twice.
-- KEYS[1] dead-letter stream, KEYS[2] source stream, KEYS[3] last-errors hash,
-- KEYS[4..] one outcomes hash per entry when ARGV[4] == '1' (field: the entry id, value: JSON).
-- ARGV[1] group, ARGV[2] failed_at, ARGV[3] outcome ttl seconds, ARGV[4] '1' to record outcomes,
-- then per entry: id, deliveries, error, fields as a JSON object.
local group, failed_at, ttl, record = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1'
local count = (#ARGV - 4) / 4
for i = 0, count - 1 do
  local base = 5 + i * 4
  local id, deliveries, err = ARGV[base], ARGV[base + 1], ARGV[base + 2]
  local args = {KEYS[1], '*'}
  for field, value in pairs(cjson.decode(ARGV[base + 3])) do
    args[#args + 1] = field
    args[#args + 1] = value
  end
  for _, pair in ipairs({{'original_id', id}, {'group', group}, {'deliveries', deliveries},
                         {'error', err}, {'failed_at', failed_at}}) do
    args[#args + 1] = pair[1]
    args[#args + 1] = pair[2]
  end
  local dead_id = redis.call('XADD', unpack(args))
  redis.call('XACK', KEYS[2], group, id)
  redis.call('HDEL', KEYS[3], id)
  if record then
    local outcome = cjson.encode({status = 'dead_lettered', error = err, dead_letter_id = dead_id})
    redis.call('HSET', KEYS[4 + i], id, outcome)
    redis.call('EXPIRE', KEYS[4 + i], ttl)
  end
end
return count
