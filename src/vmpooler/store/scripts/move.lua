-- Move a VM from one state set to another, with its record and the pool's deadline index, in one step.
-- KEYS[1] source set, KEYS[2] target set, KEYS[3] vm hash, KEYS[4] pool's active hash,
-- KEYS[5] pool's ready queue, KEYS[6] ready-since zset, KEYS[7] checked-at zset, KEYS[8] lifetime-ends zset,
-- KEYS[9] the event stream.
-- ARGV[1] name, ARGV[2] source state, ARGV[3] target state, ARGV[4] the index score for the target
-- (ready: now; running: when its lifetime ends), ARGV[5] pool, ARGV[6] the event's type, ARGV[7] its
-- time, ARGV[8] its data (JSON), ARGV[9] the stream's max length, ARGV[10..] field, value pairs for the vm hash.
-- Returns 1 when moved (and its event written), 0 when the VM was not in the source set (someone else
-- moved it first: no event).
local name, source, target = ARGV[1], ARGV[2], ARGV[3]
if redis.call('SMOVE', KEYS[1], KEYS[2], name) == 0 then
  return 0
end
if source == 'ready' then
  -- leaving ready other than by checkout (TTL, excess, a failed check, a drain): the queue
  -- must not keep its name, or it grows with every recycle
  redis.call('LREM', KEYS[5], 0, name)
  redis.call('ZREM', KEYS[6], name)
  redis.call('ZREM', KEYS[7], name)
elseif source == 'running' then
  redis.call('HDEL', KEYS[4], name)
  redis.call('ZREM', KEYS[8], name)
end
if target == 'ready' then
  redis.call('RPUSH', KEYS[5], name)
  redis.call('ZADD', KEYS[6], ARGV[4], name)
  redis.call('ZADD', KEYS[7], ARGV[4], name)
elseif target == 'running' then
  redis.call('ZADD', KEYS[8], ARGV[4], name)
end
if #ARGV > 9 then
  redis.call('HSET', KEYS[3], unpack(ARGV, 10))
end
local owner = redis.call('HGET', KEYS[3], 'token:user') or ''
emit_event(KEYS[9], ARGV[9], ARGV[6], ARGV[5], name, owner, ARGV[7], ARGV[8])
return 1
