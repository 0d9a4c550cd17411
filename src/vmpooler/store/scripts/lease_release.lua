-- Give up pools' leases, each only if ``owner`` still holds it. KEYS: the lease hashes; ARGV[1] owner.
local released = 0
for _, lease in ipairs(KEYS) do
  if redis.call('HGET', lease, 'owner') == ARGV[1] then
    released = released + redis.call('DEL', lease)
  end
end
return released
