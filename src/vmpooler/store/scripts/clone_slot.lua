-- Take one of task_limit clone slots, shared by every manager. Slots are leases that expire, so a
-- manager killed mid-clone cannot leak one.
-- KEYS[1] slots zset; ARGV[1] member, ARGV[2] now (epoch s), ARGV[3] lease expiry, ARGV[4] limit.
-- Returns 1 when taken (or already held), 0 when all slots are busy.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
