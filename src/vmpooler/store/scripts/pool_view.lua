-- Everything one manager pass reads about a pool, in one call and one reply (at 1,000 pools a
-- pipeline of ~25 commands per pool cost most of the pass's CPU in parsing their replies).
-- KEYS[1..s]: the pool's live state sets, the first c of them those whose VMs the pass checks
-- (their records' check fields are returned); then the size, template and clone-target override
-- hashes, the prepared-template and prepared-clone-target hashes, the reset set, the demand hash.
-- ARGV[1] pool, ARGV[2] vm hash key prefix, ARGV[3] s, ARGV[4] c, ARGV[5..] check field names.
-- Returns {members of state 1, ..., members of state s, {size, template, clone_target overrides},
-- {prepared template, prepared clone target}, reset requested (0/1), demand, {fields of each checked
-- VM, in member order}}; a missing value is nil.
local pool, vm_prefix = ARGV[1], ARGV[2]
local s, c = tonumber(ARGV[3]), tonumber(ARGV[4])
local fields = {}
for i = 5, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
local out, records = {}, {}
for i = 1, s do
  local members = redis.call('SMEMBERS', KEYS[i])
  out[i] = members
  if i <= c then
    for _, name in ipairs(members) do
      records[#records + 1] = redis.call('HMGET', vm_prefix .. name, unpack(fields))
    end
  end
end
out[s + 1] = {redis.call('HGET', KEYS[s + 1], pool), redis.call('HGET', KEYS[s + 2], pool),
  redis.call('HGET', KEYS[s + 3], pool)}
out[s + 2] = {redis.call('HGET', KEYS[s + 4], pool), redis.call('HGET', KEYS[s + 5], pool)}
out[s + 3] = redis.call('SISMEMBER', KEYS[s + 6], pool)
out[s + 4] = redis.call('HGET', KEYS[s + 7], pool) or '0'
out[s + 5] = records
return out
