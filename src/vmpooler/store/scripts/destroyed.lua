-- Forget a destroyed VM: leave its state set, stamp the record, let it expire after data_ttl.
-- KEYS[1] state set it leaves, KEYS[2] vm hash, KEYS[3] pool's active hash, KEYS[4] the event stream.
-- ARGV[1] name, ARGV[2] destroy time, ARGV[3] ttl seconds, ARGV[4] pool, ARGV[5] the event's time,
-- ARGV[6] its data (JSON), ARGV[7] the stream's max length.
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[2], 'destroy', ARGV[2])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
local owner = redis.call('HGET', KEYS[2], 'token:user') or ''
emit_event(KEYS[4], ARGV[7], 'vm.destroyed', ARGV[4], ARGV[1], owner, ARGV[5], ARGV[6])
return 1
