-- Move a VM from one state set to another, with its record, in one step.
-- KEYS[1] source set, KEYS[2] target set, KEYS[3] vm hash, KEYS[4] pool's active hash,
-- KEYS[5] pool's ready queue.
-- ARGV[1] name, ARGV[2] '1' to append the VM to the ready queue, ARGV[3] '1' to drop it from the
-- active hash, ARGV[4..] field, value pairs for the vm hash.
-- Returns 1 when moved, 0 when the VM was not in the source set (someone else moved it first).
if redis.call('SMOVE', KEYS[1], KEYS[2], ARGV[1]) == 0 then
  return 0
end
if ARGV[2] == '1' then
  redis.call('RPUSH', KEYS[5], ARGV[1])
end
if ARGV[3] == '1' then
  redis.call('HDEL', KEYS[4], ARGV[1])
end
if #ARGV > 3 then
  redis.call('HSET', KEYS[3], unpack(ARGV, 4))
end
return 1
