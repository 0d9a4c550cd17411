-- Record a new on-demand request unless its id is taken, and queue it for the provisioner.
-- KEYS[1] request hash, KEYS[2] new-requests zset; ARGV[1] request id, ARGV[2] score (time),
-- ARGV[3..] field, value pairs. Returns 1 when created, 0 when the id exists.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
