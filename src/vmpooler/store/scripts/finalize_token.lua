-- End the migration for one token the original stored in clear (vmpooler migrate-from-ruby --finalize).
-- KEYS[1] the clear record, KEYS[2] the hashed record, KEYS[3] the user's token index,
-- KEYS[4] the token's VM index, KEYS[5..] the records of the VMs the original checked out with it;
-- ARGV[1] the token's hash, ARGV[2] the clear token, ARGV[3] its hint, ARGV[4..] those VMs' names.
-- Returns 0 when the clear record is gone already (nothing to do), else 1.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  local record = redis.call('HGETALL', KEYS[1])
  redis.call('HSET', KEYS[2], unpack(record))
end
redis.call('HSET', KEYS[2], 'hint', ARGV[3])
redis.call('HDEL', KEYS[2], 'legacy')
redis.call('SADD', KEYS[3], ARGV[1])
for i = 5, #KEYS do
  if redis.call('HGET', KEYS[i], 'token:token') == ARGV[2] then
    redis.call('HSET', KEYS[i], 'token:token', ARGV[1])
    redis.call('SADD', KEYS[4], ARGV[i - 1])
  end
end
redis.call('DEL', KEYS[1])
return 1
