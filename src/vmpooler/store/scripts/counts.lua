-- The size of every live state set of every pool named, in one call: at 1,000 pools a pipeline of
-- 6,000 SCARDs cost ~55 ms of client CPU per /status; this costs one reply.
-- ARGV[1] key prefix, ARGV[2] comma-joined state names, ARGV[3..] pool names. Returns flat counts,
-- pool by pool, states in the given order.
local prefix = ARGV[1]
local states = {}
for state in string.gmatch(ARGV[2], '[^,]+') do
  states[#states + 1] = state
end
local out = {}
for i = 3, #ARGV do
  for _, state in ipairs(states) do
    out[#out + 1] = redis.call('SCARD', prefix .. state .. '__' .. ARGV[i])
  end
end
return out
