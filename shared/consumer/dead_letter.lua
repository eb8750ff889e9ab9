-- Move entries to the dead-letter stream and ack them, in one atomic step, so an entry is never
-- both lost and acked, nor dead-lettered twice. The group's burial record, if any, runs here too.
-- Not standalone: `dead_letter.py` prepends `local function record_burial(id, err, dead_id, keys, args)`.
-- KEYS[1] dead-letter stream, KEYS[2] source stream, KEYS[3] last-errors hash, then each entry's
-- record keys in entry order.
-- ARGV[1] group, ARGV[2] failed_at, ARGV[3] n = how many record args follow, ARGV[4..3+n] record args,
-- then per entry: id, deliveries, error, fields as a JSON object, how many record keys it has.
local group, failed_at = ARGV[1], ARGV[2]
local record_args = {}
for i = 1, tonumber(ARGV[3]) do
  record_args[i] = ARGV[3 + i]
end
local base = 4 + #record_args
local next_key = 4
local buried = 0
while base <= #ARGV do
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
  local entry_keys = {}
  for k = 1, tonumber(ARGV[base + 4]) do
    entry_keys[k] = KEYS[next_key]
    next_key = next_key + 1
  end
  record_burial(id, err, dead_id, entry_keys, record_args)
  buried = buried + 1
  base = base + 5
end
return buried
