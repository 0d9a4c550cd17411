-- Prepended by store/scripts.py to every script that calls emit_event (docs/events.md).
-- Appends one entry to the event stream, trimmed to about maxlen entries, in the caller's step.
local function emit_event(stream, maxlen, etype, pool, vm, owner, at, data)
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*',
    'type', etype, 'pool', pool, 'vm', vm, 'owner', owner, 'at', at, 'data', data)
end
