-- Add to the discovered set every name that is in none of the pool's state sets.
-- KEYS[1] the event stream, KEYS[2] discovered set, KEYS[3..] the pool's other state sets;
-- ARGV[1] pool, ARGV[2] the events' time, ARGV[3] the stream's max length, ARGV[4..] the provider's VM names.
-- Returns the names newly discovered, each with its vm.discovered event. Atomic, so a VM recorded a
-- moment ago is never taken for a leak.
local found = {}
for a = 4, #ARGV do
  local name = ARGV[a]
  local known = false
  for i = 2, #KEYS do
    if redis.call('SISMEMBER', KEYS[i], name) == 1 then
      known = true
      break
    end
  end
  if not known then
    redis.call('SADD', KEYS[2], name)
    emit_event(KEYS[1], ARGV[3], 'vm.discovered', ARGV[1], name, '', ARGV[2], '{}')
    found[#found + 1] = name
  end
end
return found
