--[[
  dropQueueData: deletes the queue's data (record, messages, claims, journal) when its fence
  holds `token` in state `moved` or `importing` (UNLINK: big sets are freed in the background,
  the call stays O(number of keys)). A `moved` fence stays as the tombstone, its journal gone;
  an `importing` fence goes with the data. Idempotency keys are left to expire with their window
  (PX): they are not enumerable without a scan.
  KEYS: [1] the queue's record key (lib.lua, queue_keys).
  ARGV: [1] token
  Returns: { 'OK' } or { 'CONFLICT', state, token, to } ({ 'CONFLICT' } when there is no fence).
  Errors: none.
]]
local k = queue_keys(0)
local cur = redis.call('HMGET', k.f, 'state', 'token', 'to')
if not cur[1] then return { 'CONFLICT' } end
if cur[2] ~= ARGV[1] or cur[1] == 'journal' then return { 'CONFLICT', cur[1], cur[2], cur[3] } end
redis.call('UNLINK', k.q, k.m, k.a, k.r, k.d, k.i, k.e, k.c, k.x, k.j, k.s, k.t)
if cur[1] == 'importing' then
  redis.call('UNLINK', k.f)
else
  redis.call('HSET', k.f, 'jv', 0, 'reset', 0)
end
return { 'OK' }
