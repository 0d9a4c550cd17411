-- Record a new VM as pending, unless a VM of that name is already known.
-- KEYS[1] pending set, KEYS[2] vm hash; ARGV[1] name, ARGV[2..] field, value pairs.
-- Returns 1 when recorded, 0 when the name is taken (the caller picks another name).
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], unpack(ARGV, 2))
return 1
