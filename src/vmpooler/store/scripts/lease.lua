-- Take or renew the leases on reconciling pools, all in one call (a manager renews every pool it
-- holds each third of a lease period: one call instead of one per pool).
-- KEYS[2i-1] pool i's lease hash, KEYS[2i] its fence counter; ARGV[1] owner, ARGV[2] lease length in ms.
-- Returns, per pool, the fencing value while ``owner`` holds the lease, false (nil) when another manager does.
-- A new holder gets a fresh, larger fencing value, so writes made under an older lease can be refused.
local out = {}
for i = 1, #KEYS / 2 do
  local lease, counter = KEYS[2 * i - 1], KEYS[2 * i]
  local owner = redis.call('HGET', lease, 'owner')
  if owner and owner ~= ARGV[1] then
    out[i] = false
  else
    local fence
    if owner then
      fence = redis.call('HGET', lease, 'fence')
    else
      fence = tostring(redis.call('INCR', counter))
      redis.call('HSET', lease, 'owner', ARGV[1], 'fence', fence)
    end
    redis.call('PEXPIRE', lease, ARGV[2])
    out[i] = fence
  end
end
return out
