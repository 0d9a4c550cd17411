-- Write one vm.expiring event per running VM whose lifetime ends by ARGV[3], once per deadline: the
-- deadline warned of is kept in the VM's record, so a lifetime extended later is warned of again.
-- KEYS[1] the pool's lifetime-ends zset, KEYS[2] the event stream, KEYS[3..] the records of ARGV[5..]'s VMs.
-- ARGV[1] pool, ARGV[2] now (the events' time), ARGV[3] ends by, ARGV[4] the stream's max length,
-- ARGV[5..] the names of VMs the zset says end by then (re-checked here, in the same step).
-- Returns the names warned of now.
local warned = {}
for i = 5, #ARGV do
  local name, record = ARGV[i], KEYS[i - 2]
  local ends = redis.call('ZSCORE', KEYS[1], name)
  if ends and tonumber(ends) <= tonumber(ARGV[3]) and redis.call('HGET', record, 'expiry_warned') ~= ends then
    redis.call('HSET', record, 'expiry_warned', ends)
    local owner = redis.call('HGET', record, 'token:user') or ''
    emit_event(KEYS[2], ARGV[4], 'vm.expiring', ARGV[1], name, owner, ARGV[2], '{"ends_at":' .. ends .. '}')
    warned[#warned + 1] = name
  end
end
return warned
