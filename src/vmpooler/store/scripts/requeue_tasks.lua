-- Put back tasks taken before ARGV[1] and never finished (their manager died).
-- KEYS[1] queue set, KEYS[2] in-progress zset. Returns how many were put back.
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, entry in ipairs(stale) do
  redis.call('SADD', KEYS[1], entry)
  redis.call('ZREM', KEYS[2], entry)
end
return #stale
