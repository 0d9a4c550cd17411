-- Change a VM's lifetime: its record and, while it runs, when the manager's index says it ends.
-- KEYS[1] vm hash, KEYS[2] the pool's running set, KEYS[3] the pool's lifetime-ends zset.
-- ARGV[1] name, ARGV[2] lifetime hours, ARGV[3] when it now ends (a zset score), ARGV[4] the events
-- channel, ARGV[5] pool: a shorter lifetime may be due before the manager's next look, so it is told.
redis.call('HSET', KEYS[1], 'lifetime', ARGV[2])
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
  redis.call('PUBLISH', ARGV[4], ARGV[5])
end
return 1
