-- Everything one manager pass reads about a pool, in one call and one reply (at 1,000 pools a
-- pipeline of ~25 commands per pool cost most of the pass's CPU in parsing their replies). Of the
-- ready and running VMs only those due are read (the deadline index), so a pass costs what changed.
-- KEYS[1..s]: the pool's live state sets, the first c of them those whose VMs' records the pass reads
-- (their check fields are returned); then the size, template and clone-target override hashes, the
-- prepared-template and prepared-clone-target hashes, the reset set, the demand hash; then the
-- ready-since, checked-at and lifetime-ends zsets, the ready set and the running set.
-- ARGV[1] pool, ARGV[2] vm hash key prefix, ARGV[3] s, ARGV[4] c, ARGV[5] ready since at most this
-- is expired, ARGV[6] checked at most this is due a check, ARGV[7] now (lifetimes ending by then are
-- over), ARGV[8] the most VMs of each kind returned as due, ARGV[9..] check field names.
-- Returns {members of state 1, ..., members of state s, {size, template, clone_target overrides},
-- {prepared template, prepared clone target}, reset requested (0/1), demand, {fields of each VM of
-- the first c states, in member order}, {expired, due a check, lifetime over}, {earliest ready-since,
-- checked-at and lifetime end not yet due (scores as strings)}, index consistent (0/1)};
-- a missing value is nil (false in a list).
local pool, vm_prefix = ARGV[1], ARGV[2]
local s, c = tonumber(ARGV[3]), tonumber(ARGV[4])
local fields = {}
for i = 9, #ARGV do
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

local since, checked, ends = KEYS[s + 8], KEYS[s + 9], KEYS[s + 10]
local ready, running = KEYS[s + 11], KEYS[s + 12]
local limit = ARGV[8]

-- entries due whose VM is still in ``set``; an entry whose VM left it another way (the original
-- vmpooler, a hand edit) is dropped here, once
local function due(index, cutoff, set)
  local found = {}
  for _, name in ipairs(redis.call('ZRANGEBYSCORE', index, '-inf', cutoff, 'LIMIT', 0, limit)) do
    if redis.call('SISMEMBER', set, name) == 1 then
      found[#found + 1] = name
    else
      redis.call('ZREM', index, name)
    end
  end
  return found
end

local function next_after(index, cutoff)
  local first = redis.call('ZRANGEBYSCORE', index, '(' .. cutoff, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  return first[2] or false
end

out[s + 6] = {due(since, ARGV[5], ready), due(checked, ARGV[6], ready), due(ends, ARGV[7], running)}
out[s + 7] = {next_after(since, ARGV[5]), next_after(checked, ARGV[6]), next_after(ends, ARGV[7])}
local ready_count, running_count = redis.call('SCARD', ready), redis.call('SCARD', running)
local consistent = redis.call('ZCARD', since) == ready_count and redis.call('ZCARD', checked) == ready_count
  and redis.call('ZCARD', ends) == running_count
out[s + 8] = consistent and 1 or 0
return out
