-- Undo the checkout of one VM before the reply went out: it failed its hand-out check (-> quarantine),
-- or the batch it was part of could not be completed (-> back to the head of the ready queue).
-- KEYS[1] running set, KEYS[2] target set (quarantine or ready), KEYS[3] vm hash, KEYS[4] pool's active
-- hash, KEYS[5] lifetime-ends zset, KEYS[6] ready queue, KEYS[7] ready-since zset, KEYS[8] checked-at
-- zset, KEYS[9] the pool's hand-out stats hash, KEYS[10] the event stream; any keys after those are
-- index sets the checkout added the VM to (its token's), which it leaves.
-- ARGV[1] name, ARGV[2] target state ('quarantine' or 'ready'), ARGV[3] now (a zset score),
-- ARGV[4] now as the record writes times, ARGV[5] why, ARGV[6] the ready-since score to restore (ready),
-- ARGV[7] pool, ARGV[8] the event's type, ARGV[9] its time, ARGV[10] its data (JSON), ARGV[11] the
-- stream's max length, ARGV[12..] the record fields the checkout wrote, to remove.
-- Returns 1 when undone (and its event written), 0 when the VM was not running (nothing changed).
local name, target = ARGV[1], ARGV[2]
if redis.call('SMOVE', KEYS[1], KEYS[2], name) == 0 then
  return 0
end
local owner = redis.call('HGET', KEYS[3], 'token:user') or ''
redis.call('HDEL', KEYS[4], name)
redis.call('ZREM', KEYS[5], name)
for k = 11, #KEYS do
  redis.call('SREM', KEYS[k], name)
end
if #ARGV > 11 then
  redis.call('HDEL', KEYS[3], unpack(ARGV, 12))
end
if target == 'ready' then
  -- it was the oldest and has just passed its check: the next checkout takes it first
  redis.call('LPUSH', KEYS[6], name)
  redis.call('ZADD', KEYS[7], ARGV[6], name)
  redis.call('ZADD', KEYS[8], ARGV[3], name)
else
  redis.call('HSET', KEYS[3], 'quarantined', ARGV[4], 'quarantine_reason', ARGV[5])
  redis.call('HINCRBY', KEYS[9], 'quarantined', 1)
end
emit_event(KEYS[10], ARGV[11], ARGV[8], ARGV[7], name, owner, ARGV[9], ARGV[10])
return 1
