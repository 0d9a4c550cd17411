-- Take or renew the lease on reconciling one pool.
-- KEYS[1] lease hash, KEYS[2] fence counter; ARGV[1] owner, ARGV[2] lease length in ms.
-- Returns the fencing value while ``owner`` holds the lease, nil when another manager does.
-- A new holder gets a fresh, larger fencing value, so writes made under an older lease can be refused.
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then
  return nil
end
local fence
if owner then
  fence = redis.call('HGET', KEYS[1], 'fence')
else
  fence = tostring(redis.call('INCR', KEYS[2]))
  redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'fence', fence)
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return fence
