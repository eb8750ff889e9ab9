-- The `dead_lettered` outcome of one ingest event, written by the consumer runtime's dead-letter
-- script in the same atomic step as the dead letter and the ack (this is a function body: see
-- `shared.consumer.BurialRecord`; `id`, `err`, `dead_id`, `keys`, `args` are its parameters).
-- keys[1] the event's outcomes hash (field: the entry id, value: JSON).
-- args: outcome ttl seconds, then the status field, the status, the error field, the dead-letter-id field.
local record = {[args[2]] = args[3], [args[4]] = err, [args[5]] = dead_id}
redis.call('HSET', keys[1], id, cjson.encode(record))
redis.call('EXPIRE', keys[1], args[1])
