-- Check out a batch of VMs, all or nothing, in O(batch size): no scan of any pool's members.
-- For each distinct pool i, KEYS[8i-7..8i] = ready set, ready queue, running set, active hash,
-- history counts hash, ready-since zset, checked-at zset, lifetime-ends zset (the manager's deadline
-- index); then the event stream; any keys after it are index sets every VM taken is added to (its
-- token's, its request's).
-- ARGV[1] now, ARGV[2] vm hash key prefix, ARGV[3] number of pools, ARGV[4] n requests, ARGV[5]
-- the history field counting this minute's checkouts, ARGV[6] the one counting refusals (a request
-- no candidate pool could serve; '' counts none), ARGV[7] when the VMs' lifetime ends (a zset score,
-- '+inf' for never); then per request: k, then k pool indexes
-- (the candidates, in preference order); then m, then m field, value pairs for each vm hash.
-- After the fields: the event stream's max length, the owner, data (JSON) and time (epoch seconds) of
-- each vm.checked_out event, the events channel, then the name of each pool (by index); every pool that gave a VM is
-- published there, so its manager refills it at once instead of at its next poll.
-- Returns {1, pool index, name, pool index, name, ...} or {0, index of the first request short of VMs}.
local now, vm_prefix = ARGV[1], ARGV[2]
local npools = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local minute_field = ARGV[5]
local refused_field = ARGV[6]
local lifetime_ends = ARGV[7]
local pos = 8
local requests = {}
for r = 1, n do
  local k = tonumber(ARGV[pos])
  local candidates = {}
  for c = 1, k do
    candidates[c] = tonumber(ARGV[pos + c])
  end
  requests[r] = candidates
  pos = pos + k + 1
end
local m = tonumber(ARGV[pos])
local fields = {}
for f = 1, 2 * m do
  fields[f] = ARGV[pos + f]
end

-- Plan first, from O(1) set sizes, so a shortage changes nothing.
local available, plan = {}, {}
for r = 1, n do
  local chosen = nil
  for _, i in ipairs(requests[r]) do
    if available[i] == nil then
      available[i] = redis.call('SCARD', KEYS[8 * i - 7])
    end
    if available[i] > 0 then
      chosen = i
      break
    end
  end
  if chosen == nil then
    -- counted against the first candidate: the pool asked for (an alias's others were empty too)
    if refused_field ~= '' then
      redis.call('HINCRBY', KEYS[8 * requests[r][1] - 3], refused_field, 1)
    end
    return {0, r}
  end
  available[chosen] = available[chosen] - 1
  plan[r] = chosen
end

local function pop_oldest(ready, queue)
  while true do
    local name = redis.call('LPOP', queue)
    if not name then
      break
    end
    -- entries of VMs that left ready another way are skipped (each once, so O(1) amortised)
    if redis.call('SISMEMBER', ready, name) == 1 then
      return name
    end
  end
  -- members the queue does not know: written by the original vmpooler or by hand
  return redis.call('SRANDMEMBER', ready)
end


local after = pos + 2 * m + 1
local maxlen, owner, data, at = ARGV[after], ARGV[after + 1], ARGV[after + 2], ARGV[after + 3]
local stream = KEYS[8 * npools + 1]
local out = {1}
for r = 1, n do
  local i = plan[r]
  local base = 8 * (i - 1)
  local ready, queue, running, active = KEYS[base + 1], KEYS[base + 2], KEYS[base + 3], KEYS[base + 4]
  local name = pop_oldest(ready, queue)
  redis.call('SMOVE', ready, running, name)
  redis.call('HSET', active, name, now)
  redis.call('ZREM', KEYS[base + 6], name)
  redis.call('ZREM', KEYS[base + 7], name)
  redis.call('ZADD', KEYS[base + 8], lifetime_ends, name)
  redis.call('HSET', vm_prefix .. name, 'checkout', now)
  if m > 0 then
    redis.call('HSET', vm_prefix .. name, unpack(fields))
  end
  redis.call('HINCRBY', KEYS[base + 5], minute_field, 1)
  for k = 8 * npools + 2, #KEYS do
    redis.call('SADD', KEYS[k], name)
  end
  emit_event(stream, maxlen, 'vm.checked_out', ARGV[after + 4 + i], name, owner, at, data)
  out[#out + 1] = i
  out[#out + 1] = name
end

local channel = ARGV[after + 4]
if channel then
  local told = {}
  for r = 1, n do
    local i = plan[r]
    if not told[i] then
      told[i] = true
      redis.call('PUBLISH', channel, ARGV[after + 4 + i])
    end
  end
end
return out
