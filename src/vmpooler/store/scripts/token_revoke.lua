-- Delete a token (and the original's clear record of it) with its token.revoked event; no event when it
-- was gone already (two revocations racing write one).
-- KEYS[1] the token's record, KEYS[2] the user's token index, KEYS[3] the token's VM index,
-- KEYS[4] the event stream, KEYS[5] (optional) the original's clear record of the same token.
-- ARGV[1] token id, ARGV[2] user, ARGV[3] the event's time, ARGV[4] why (revoked, expired),
-- ARGV[5] the stream's max length. Returns 1 when a record was deleted, else 0.
local hint = redis.call('HGET', KEYS[1], 'hint') or ''
local deleted = redis.call('DEL', KEYS[1])
if KEYS[5] then
  deleted = deleted + redis.call('DEL', KEYS[5])
end
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
if deleted == 0 then
  return 0
end
emit_event(KEYS[4], ARGV[5], 'token.revoked', '', '', ARGV[2], ARGV[3], cjson.encode({hint = hint, reason = ARGV[4]}))
return 1
