-- Take one queued task and note it as in progress, so a manager that dies mid-task loses nothing.
-- KEYS[1] queue set, KEYS[2] in-progress zset; ARGV[1] now. Returns the entry or false.
local entry = redis.call('SPOP', KEYS[1])
if entry then
  redis.call('ZADD', KEYS[2], ARGV[1], entry)
end
return entry
