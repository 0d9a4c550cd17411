-- An event a webhook gave up on: into its dead letters (capped, oldest out first), acknowledged in its
-- consumer group, and counted, in one step, so a crash never leaves it both pending and dead.
-- KEYS: stream, dead hash, dead order zset, stats hash, log list
-- ARGV: group, event id, dead letter JSON, now, dead cap, log entry JSON, log cap
local stream, dead, order, stats, log = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local group, id, letter, now, cap, entry, log_cap = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
redis.call('HSET', dead, id, letter)
redis.call('ZADD', order, now, id)
local extra = redis.call('ZCARD', order) - cap
if extra > 0 then
  for _, old in ipairs(redis.call('ZRANGE', order, 0, extra - 1)) do
    redis.call('HDEL', dead, old)
  end
  redis.call('ZREMRANGEBYRANK', order, 0, extra - 1)
end
redis.call('XACK', stream, group, id)
redis.call('LPUSH', log, entry)
redis.call('LTRIM', log, 0, log_cap - 1)
redis.call('HINCRBY', stats, 'dead', 1)
return 1
