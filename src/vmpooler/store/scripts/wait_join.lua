-- A checkout request starts waiting in a pool's queue (docs/waiting.md).
-- KEYS[1] the pool's queue, KEYS[2] its owner clocks, KEYS[3] the arrival counter, KEYS[4] the event stream.
-- ARGV: request hash prefix, request id, owner, user, weight, VMs asked, now, heartbeat deadline, most
-- requests the queue may hold, the event stream's max length, the event's time and pool, then the quota's
-- arguments (quota.lua). A request that joins writes checkout.queued. An owner with nothing waiting starts at the least-served waiting owner's
-- clock (never behind its own), so being away earns no credit and past service no debt beyond it.
-- Returns {arrival number}, {-1} when the queue is full, or {-2, quota, held, limit, asked} when the owner
-- is past a quota already (it would be refused when served: it is refused now instead).
local queue, vtime = KEYS[1], KEYS[2]
local prefix, id, owner = ARGV[1], ARGV[2], ARGV[3]
if redis.call('ZCARD', queue) >= tonumber(ARGV[9]) then
  return {-1}
end
local refusal = quota_refusal(ARGV, 13)
if refusal then
  return {-2, refusal[1], refusal[2], refusal[3], refusal[4]}
end
local waiting_clock, owner_waits = nil, false
for _, other in ipairs(redis.call('ZRANGE', queue, 0, -1)) do
  local o = redis.call('HGET', prefix .. other, 'owner')
  if o == owner then
    owner_waits = true
  elseif o then
    local c = tonumber(redis.call('HGET', vtime, o) or '0')
    if waiting_clock == nil or c < waiting_clock then
      waiting_clock = c
    end
  end
end
if waiting_clock == nil and not owner_waits then
  redis.call('DEL', vtime)  -- nobody waits: every owner starts even
elseif not owner_waits then
  local own = tonumber(redis.call('HGET', vtime, owner) or '0')
  if own < waiting_clock then
    redis.call('HSET', vtime, owner, tostring(waiting_clock))
  end
end
local seq = redis.call('INCR', KEYS[3])
redis.call('HSET', prefix .. id, 'owner', owner, 'user', ARGV[4], 'weight', ARGV[5], 'count', ARGV[6],
  'joined', ARGV[7], 'expires', ARGV[8], 'seq', seq)
redis.call('ZADD', queue, seq, id)
emit_event(KEYS[4], ARGV[10], 'checkout.queued', ARGV[12], '', owner, ARGV[11],
  cjson.encode({request = id, vms = tonumber(ARGV[6])}))
return {seq}
