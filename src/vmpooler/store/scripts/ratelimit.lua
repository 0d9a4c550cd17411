-- Count one request against each of its rate limits, all or none.
-- KEYS[i] the counter of limit i; ARGV[2i-1] its limit, ARGV[2i] its period in ms.
-- A window opens with the first request counted (the counter is created with the period as expiry)
-- and ends when Redis expires the counter, so every API process agrees on it without a shared clock.
-- A request is counted only if no limit is used up: a refused request spends no one's budget.
-- Returns {allowed (1|0), {count, ms_left} per limit}; counts include this request when allowed.
local reply = {1}
for i, key in ipairs(KEYS) do
  local limit, period = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local count = tonumber(redis.call('GET', key) or '0')
  local left = redis.call('PTTL', key)
  if left == -1 then
    -- a counter without expiry (not ours) would shut its client out for good
    redis.call('PEXPIRE', key, period)
    left = period
  elseif left == -2 then
    left = period
  end
  if count >= limit then
    reply[1] = 0
  end
  reply[i + 1] = {count, left}
end
if reply[1] == 1 then
  for i, key in ipairs(KEYS) do
    local count = redis.call('INCR', key)
    if count == 1 then
      redis.call('PEXPIRE', key, ARGV[2 * i])
    end
    reply[i + 1][1] = count
  end
end
return reply
