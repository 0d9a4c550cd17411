-- The size of every live state set of every pool named, in one call: at 1,000 pools a pipeline of
-- 6,000 SCARDs cost ~55 ms of client CPU per /status; this costs one reply.
-- ARGV[1] n, ARGV[2..n+1] the name prefix of each state's sets (keys.state_set_prefix), then pool
-- names. Returns flat counts, pool by pool, states in the given order.
local n = tonumber(ARGV[1])
local out = {}
for i = n + 2, #ARGV do
  for s = 2, n + 1 do
    out[#out + 1] = redis.call('SCARD', ARGV[s] .. ARGV[i])
  end
end
return out
