-- A checkout (the checkout function above) that first checks the owner's quota, in the same step.
-- ARGV[1] = q, ARGV[2..1+q] the quota's arguments (quota.lua), the rest the checkout's; KEYS: the checkout's.
-- Returns the checkout's reply, or {-1, quota, held, limit, asked} when the quota refuses (nothing taken).
local q = tonumber(ARGV[1])
local refusal = quota_refusal(ARGV, 2)
if refusal then
  return {-1, refusal[1], refusal[2], refusal[3], refusal[4]}
end
local rest = {}
for i = 2 + q, #ARGV do
  rest[#rest + 1] = ARGV[i]
end
return checkout(KEYS, rest)
