-- Record one clone or boot duration: per VM in the original's day hash, and in the day's running
-- aggregate (count, total, min, max, overall and again per pool as "<field>:<pool>") so status and
-- summary read O(pools) per day instead of every VM's entry.
-- KEYS[1] the original's "<pool>:<vm>" -> seconds hash, KEYS[2] aggregate hash;
-- ARGV[1] "<pool>:<vm>", ARGV[2] seconds, ARGV[3] expiry seconds for both keys.
local seconds = tonumber(ARGV[2])
local pool = string.match(ARGV[1], '^([^:]*):') or 'unknown'
if redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  -- a VM recorded twice keeps its first figure in the aggregate: its count still matches the hash
  return 0
end
for _, suffix in ipairs({'', ':' .. pool}) do
  redis.call('HINCRBY', KEYS[2], 'count' .. suffix, 1)
  redis.call('HINCRBYFLOAT', KEYS[2], 'total' .. suffix, seconds)
  local low = tonumber(redis.call('HGET', KEYS[2], 'min' .. suffix))
  if low == nil or seconds < low then
    redis.call('HSET', KEYS[2], 'min' .. suffix, ARGV[2])
  end
  local high = tonumber(redis.call('HGET', KEYS[2], 'max' .. suffix))
  if high == nil or seconds > high then
    redis.call('HSET', KEYS[2], 'max' .. suffix, ARGV[2])
  end
end
if tonumber(ARGV[3]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
return 1
