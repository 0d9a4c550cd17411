-- Move every new on-demand request to the processing zset; returns their ids, oldest first.
-- KEYS[1] new-requests zset, KEYS[2] processing zset.
local found = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local ids = {}
for i = 1, #found, 2 do
  redis.call('ZADD', KEYS[2], found[i + 1], found[i])
  ids[#ids + 1] = found[i]
end
if #ids > 0 then
  redis.call('ZREM', KEYS[1], unpack(ids))
end
return ids
