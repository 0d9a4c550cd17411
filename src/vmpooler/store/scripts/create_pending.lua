-- Record a new VM as pending, unless a VM of that name is already known or the caller's lease on
-- the pool has passed to another manager.
-- KEYS[1] pending set, KEYS[2] vm hash, KEYS[3] the pool's lease hash, KEYS[4] the event stream;
-- ARGV[1] fencing value ('' when the caller holds no lease: a single manager), ARGV[2] name,
-- ARGV[3] pool, ARGV[4] the event's time, ARGV[5] its data (JSON), ARGV[6] the stream's max length,
-- ARGV[7..] field, value pairs.
-- Returns 1 when recorded, 0 when the name is taken (the caller picks another name), -1 when the
-- fencing value is stale: a manager that lost its lease must not add VMs its successor also adds.
if ARGV[1] ~= '' and redis.call('HGET', KEYS[3], 'fence') ~= ARGV[1] then
  return -1
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('SADD', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], unpack(ARGV, 7))
emit_event(KEYS[4], ARGV[6], 'vm.cloned', ARGV[3], ARGV[2], '', ARGV[4], ARGV[5])
return 1
