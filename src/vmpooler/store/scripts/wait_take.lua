-- A waiting request looks again: served (all its VMs at once, by the checkout function above) when the
-- fair pass (fair.lua) gives it every VM it asked for, else told its place (docs/waiting.md).
-- KEYS[1] the pool's queue, KEYS[2] its owner clocks, KEYS[3] the event stream, then the checkout's keys
-- (KEYS[4]: the ready set). ARGV[1] request id, [2] now, [3] request hash prefix, [4] heartbeat deadline,
-- [5] wake channel, [6] pool, [7] the event stream's max length, [8] the events' time, [9] q,
-- [10..9+q] the quota's arguments (quota.lua), then the checkout's arguments. Served: checkout.served
-- (with the seconds waited); refused by the quota: checkout.gave_up.
-- Returns the checkout's reply when served; {-1, quota, held, limit, asked} when the quota refuses
-- (the request leaves the queue); {-2, place, requests waiting}; {-3} when the request is gone (its
-- heartbeat lapsed).
local queue, vtime = KEYS[1], KEYS[2]
local id, now, prefix = ARGV[1], tonumber(ARGV[2]), ARGV[3]
if redis.call('EXISTS', prefix .. id) == 0 then
  return {-3}
end
redis.call('HSET', prefix .. id, 'expires', ARGV[4])
local ev = {stream = KEYS[3], maxlen = ARGV[7], pool = ARGV[6], at = ARGV[8]}
local requests, served = fair_pass(queue, vtime, prefix, now, redis.call('SCARD', KEYS[4]), ev)

local function leave(owner, count, weight)
  redis.call('ZREM', queue, id)
  redis.call('DEL', prefix .. id)
  if owner then
    redis.call('HINCRBYFLOAT', vtime, owner, count / weight)
  end
  if redis.call('ZCARD', queue) == 0 then
    redis.call('DEL', vtime)
  end
  redis.call('PUBLISH', ARGV[5], ARGV[6])
end

local place, mine = 0, nil
for i, r in ipairs(requests) do
  if r.id == id then
    place, mine = i, r
  end
end
if not served[id] then
  return {-2, place, #requests}
end
local q = tonumber(ARGV[9])
local refusal = quota_refusal(ARGV, 10)
if refusal then
  leave(nil, 0, 1)
  emit_event(ev.stream, ev.maxlen, 'checkout.gave_up', ev.pool, '', mine.owner, ev.at,
    cjson.encode({request = id, vms = mine.count, reason = 'quota', quota = refusal[1]}))
  return {-1, refusal[1], refusal[2], refusal[3], refusal[4]}
end
local ck, ca = {}, {}
for i = 4, #KEYS do
  ck[#ck + 1] = KEYS[i]
end
for i = 10 + q, #ARGV do
  ca[#ca + 1] = ARGV[i]
end
local reply = checkout(ck, ca)
if reply[1] == 1 then
  leave(mine.owner, mine.count, mine.weight)
  emit_event(ev.stream, ev.maxlen, 'checkout.served', ev.pool, '', mine.owner, ev.at,
    cjson.encode({request = id, vms = mine.count, waited = math.max(0, now - tonumber(mine.joined))}))
  return reply
end
return {-2, place, #requests}
