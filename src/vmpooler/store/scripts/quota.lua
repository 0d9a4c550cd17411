-- quota_refusal(args, pos): whether a checkout would take an owner past a quota (docs/waiting.md).
-- args[pos] = 1 to check (0: no quota); then the owner's VM index set, the VM hash prefix, the running
-- sets' prefix, the overall limit (-1: none), VMs asked in all, the number of per-pool limits and each
-- as: name, limit, VMs asked of it, n, then its n pools. Index members no longer running are pruned.
-- Returns nil, or {'running' or the pool's name, VMs held now, limit, VMs asked}.
local function quota_refusal(args, pos)
  if args[pos] ~= '1' then
    return nil
  end
  local owner_set, vm_prefix, running_prefix = args[pos + 1], args[pos + 2], args[pos + 3]
  local max_total, want_total = tonumber(args[pos + 4]), tonumber(args[pos + 5])
  local held_in = {}
  local held = 0
  for _, name in ipairs(redis.call('SMEMBERS', owner_set)) do
    local pool = redis.call('HGET', vm_prefix .. name, 'pool')
    if pool and redis.call('SISMEMBER', running_prefix .. pool, name) == 1 then
      held = held + 1
      held_in[pool] = (held_in[pool] or 0) + 1
    else
      redis.call('SREM', owner_set, name)
    end
  end
  if max_total >= 0 and held + want_total > max_total then
    return {'running', held, max_total, want_total}
  end
  local at = pos + 7
  for _ = 1, tonumber(args[pos + 6]) do
    local name, limit, want, n = args[at], tonumber(args[at + 1]), tonumber(args[at + 2]), tonumber(args[at + 3])
    local used = 0
    for p = 1, n do
      used = used + (held_in[args[at + 3 + p]] or 0)
    end
    if used + want > limit then
      return {name, used, limit, want}
    end
    at = at + 4 + n
  end
  return nil
end
