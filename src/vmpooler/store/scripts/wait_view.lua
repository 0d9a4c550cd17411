-- A pool's waiting requests in fair order (fair.lua), for GET /vm/<pool>/queue and /status.
-- KEYS[1] the queue, KEYS[2] the owner clocks, KEYS[3] the ready set, KEYS[4] the event stream; ARGV:
-- request hash prefix, now, the event stream's max length, the pool, the events' time.
-- Returns, per request in order: id, owner, user, VMs asked, when it joined, 1 if the ready VMs serve it now.
local ev = {stream = KEYS[4], maxlen = ARGV[3], pool = ARGV[4], at = ARGV[5]}
local requests, served = fair_pass(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]), redis.call('SCARD', KEYS[3]), ev)
local out = {}
for _, r in ipairs(requests) do
  out[#out + 1] = r.id
  out[#out + 1] = r.owner
  out[#out + 1] = r.user
  out[#out + 1] = r.count
  out[#out + 1] = r.joined
  out[#out + 1] = served[r.id] and 1 or 0
end
return out
