-- Publish why a pool cannot be filled (or that it can again), with its event, only when that changes:
-- pool.breaker_opened when the pool becomes degraded, pool.breaker_closed when it recovers.
-- KEYS[1] the pool health hash, KEYS[2] the event stream.
-- ARGV[1] pool, ARGV[2] the health record (JSON; '' to recover), ARGV[3] the event's time,
-- ARGV[4] the stream's max length.
-- Returns 1 when an event was written, 0 when the pool's state of health did not change.
if ARGV[2] == '' then
  if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
    return 0
  end
  emit_event(KEYS[2], ARGV[4], 'pool.breaker_closed', ARGV[1], '', '', ARGV[3], '{}')
  return 1
end
if redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0  -- degraded already: a new reason for the same outage
end
emit_event(KEYS[2], ARGV[4], 'pool.breaker_opened', ARGV[1], '', '', ARGV[3], ARGV[2])
return 1
