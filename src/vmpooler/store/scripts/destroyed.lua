-- Forget a destroyed VM: leave its state set, stamp the record, let it expire after data_ttl.
-- KEYS[1] state set it leaves, KEYS[2] vm hash, KEYS[3] pool's active hash.
-- ARGV[1] name, ARGV[2] destroy time, ARGV[3] ttl seconds.
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[2], 'destroy', ARGV[2])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
return 1
