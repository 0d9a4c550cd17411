-- A waiting request gives up its place (its client left, or its wait budget ran out); it held nothing.
-- KEYS[1] the pool's queue, KEYS[2] its owner clocks, KEYS[3] the request's hash, KEYS[4] the event stream;
-- ARGV: id, wake channel, pool, the event stream's max length, the event's time, why it left.
-- Returns 1 when it was still waiting (then checkout.gave_up is written).
local h = redis.call('HMGET', KEYS[3], 'owner', 'count')
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[3])
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
if removed == 1 then
  emit_event(KEYS[4], ARGV[4], 'checkout.gave_up', ARGV[3], '', h[1] or '', ARGV[5],
    cjson.encode({request = ARGV[1], vms = tonumber(h[2]), reason = ARGV[6]}))
end
return removed
