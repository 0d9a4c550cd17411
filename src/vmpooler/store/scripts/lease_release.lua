-- Give up a pool's lease, only if ``owner`` still holds it. KEYS[1] lease hash; ARGV[1] owner.
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
