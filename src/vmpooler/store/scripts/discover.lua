-- Add to the discovered set every name that is in none of the pool's state sets.
-- KEYS[1] discovered set, KEYS[2..] the pool's other state sets; ARGV the provider's VM names.
-- Returns the names newly discovered. Atomic, so a VM recorded a moment ago is never taken for a leak.
local found = {}
for _, name in ipairs(ARGV) do
  local known = false
  for i = 1, #KEYS do
    if redis.call('SISMEMBER', KEYS[i], name) == 1 then
      known = true
      break
    end
  end
  if not known then
    redis.call('SADD', KEYS[1], name)
    found[#found + 1] = name
  end
end
return found
