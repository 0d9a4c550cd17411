-- Tag a VM: on its record ("tag:<name>") and in the day's tag summary ("<vm>:<name>"), unless the VM
-- would then carry more than the allowed number of tags (counted here, so concurrent requests
-- cannot add up past it).
-- KEYS[1] the VM's record, KEYS[2] the day's tag summary; ARGV[1] the most tags a VM may carry,
-- ARGV[2] the VM's name, ARGV[3..] tag name, value, name, value, ...
-- Returns -1 when stored, else the number of tags the VM would have had (nothing is stored).
local count = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, 4) == 'tag:' then
    count = count + 1
  end
end
for i = 3, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], 'tag:' .. ARGV[i]) == 0 then
    count = count + 1
  end
end
if count > tonumber(ARGV[1]) then
  return count
end
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[1], 'tag:' .. ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[2], ARGV[2] .. ':' .. ARGV[i], ARGV[i + 1])
end
return -1
