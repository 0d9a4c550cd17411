-- Record one clone or boot duration: per VM in the original's day hash, and in the day's running
-- aggregate (count, total, min, max) so status and summary read O(1) per day.
-- KEYS[1] the original's "<pool>:<vm>" -> seconds hash, KEYS[2] aggregate hash;
-- ARGV[1] "<pool>:<vm>", ARGV[2] seconds, ARGV[3] expiry seconds for both keys.
local seconds = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], 'count', 1)
redis.call('HINCRBYFLOAT', KEYS[2], 'total', seconds)
local low = tonumber(redis.call('HGET', KEYS[2], 'min'))
if low == nil or seconds < low then
  redis.call('HSET', KEYS[2], 'min', ARGV[2])
end
local high = tonumber(redis.call('HGET', KEYS[2], 'max'))
if high == nil or seconds > high then
  redis.call('HSET', KEYS[2], 'max', ARGV[2])
end
if tonumber(ARGV[3]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
return 1
