-- Remove one pool's run-time override with its config.changed event; nothing when it had none.
-- KEYS[1] the override hash, KEYS[2] the event stream.
-- ARGV[1] pool, ARGV[2] override kind, ARGV[3] the pub/sub channel that wakes the pool's manager,
-- ARGV[4] the event's time, ARGV[5] the stream's max length. Returns the value it had, or nil.
local before = redis.call('HGET', KEYS[1], ARGV[1])
if not before then
  return nil
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[1])
emit_event(KEYS[2], ARGV[5], 'config.changed', ARGV[1], '', '', ARGV[4],
  cjson.encode({kind = ARGV[2], before = before, value = cjson.null}))
return before
