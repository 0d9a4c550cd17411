-- fair_pass(queue, vtime, prefix, now, available, ev): one pool's waiting requests in fair order, and which
-- of them the ready VMs serve now (docs/waiting.md). Requests whose heartbeat lapsed are dropped here, each
-- with a checkout.gave_up event (ev: {stream, maxlen, pool, at}).
-- Each owner's oldest request is its head; the ready VMs go one at a time to the head whose owner is
-- furthest behind its share (served VMs per unit of weight, counting those given in this pass; ties go
-- to the older head). A head given all it asked for is served; the others take nothing (what they
-- were given is a reservation for this pass only, so nothing is held for a waiter that vanishes).
-- Returns the requests sorted by finish tag (owner clock + VMs asked up to it / weight, then arrival),
-- and the set of ids served.
local function fair_pass(queue, vtime, prefix, now, available, ev)
  local ids = redis.call('ZRANGE', queue, 0, -1)
  local requests, heads, owners, clock = {}, {}, {}, {}
  for _, id in ipairs(ids) do
    local h = redis.call('HMGET', prefix .. id, 'owner', 'weight', 'count', 'expires', 'seq', 'user', 'joined')
    if not h[4] or tonumber(h[4]) < now then
      redis.call('ZREM', queue, id)
      redis.call('DEL', prefix .. id)
      if h[1] then
        emit_event(ev.stream, ev.maxlen, 'checkout.gave_up', ev.pool, '', h[1], ev.at,
          cjson.encode({request = id, vms = tonumber(h[3]), reason = 'heartbeat'}))
      end
    else
      local r = {id = id, owner = h[1], weight = tonumber(h[2]), count = tonumber(h[3]), seq = tonumber(h[5]),
        user = h[6], joined = h[7]}
      requests[#requests + 1] = r
      if heads[r.owner] == nil then
        heads[r.owner] = r
        owners[#owners + 1] = r.owner
        clock[r.owner] = tonumber(redis.call('HGET', vtime, r.owner) or '0')
      end
    end
  end
  local given = {}
  for _, o in ipairs(owners) do
    given[o] = 0
  end
  for _ = 1, available do
    local best, best_key = nil, nil
    for _, o in ipairs(owners) do
      local head = heads[o]
      if given[o] < head.count then
        local key = clock[o] + given[o] / head.weight
        if best == nil or key < best_key then
          best, best_key = o, key
        end
      end
    end
    if best == nil then
      break
    end
    given[best] = given[best] + 1
  end
  local served = {}
  for _, o in ipairs(owners) do
    if given[o] == heads[o].count then
      served[heads[o].id] = true
    end
  end
  local ahead = {}
  for _, r in ipairs(requests) do
    ahead[r.owner] = (ahead[r.owner] or clock[r.owner]) + r.count / r.weight
    r.finish = ahead[r.owner]
  end
  table.sort(requests, function(a, b)
    if a.finish ~= b.finish then
      return a.finish < b.finish
    end
    return a.seq < b.seq
  end)
  return requests, served
end
