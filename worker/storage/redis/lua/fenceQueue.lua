--[[
  fenceQueue: sets or clears the queue's migration fence if its current token is the expected
  one (compare-and-set; shared/storage/migration.ts). The journal: setting `journal` starts an
  empty one (the same fence set again is a retry and keeps it); `journal` -> `moved` under the
  same token keeps it for the final drain; clearing, or setting `importing`, drops it (UNLINK:
  freed in the background, so bounded here).
  KEYS: [1] the queue's record key (lib.lua, queue_keys), writes f, j; [2] its listeners' mark
        (keys.ts), set when an `importing` fence is cleared.
  ARGV: [1] expected token ('' with [2] '0': no fence expected)  [2] '1' when a token is expected
        [3] new state ('' to clear)  [4] new token  [5] new destination pool  [6] now (ms)
  Returns: { 'OK' } or { 'CONFLICT', state, token, to } ({ 'CONFLICT' } when there is no fence).
  Errors: none.
]]
local k = queue_keys(0)
local cur = redis.call('HMGET', k.f, 'state', 'token', 'to', 'reset')
local expecting = ARGV[2] == '1'
if (cur[1] and (not expecting or cur[2] ~= ARGV[1])) or (not cur[1] and expecting) then
  if cur[1] then return { 'CONFLICT', cur[1], cur[2], cur[3] } end
  return { 'CONFLICT' }
end
local state, token, to = ARGV[3], ARGV[4], ARGV[5]
if state == '' then
  redis.call('UNLINK', k.f, k.j)
  -- A migration's target goes live here (its `importing` fence lifted at the switch): the
  -- listeners parked before it marked the pool the queue left (listenQueue.lua), so posts here
  -- are announced for the longest wait any of them may have marked there.
  if cur[1] == 'importing' then mark_listening(KEYS[NKEYS + 1], tonumber(ARGV[6]), LISTEN_MAX_MS) end
  return { 'OK' }
end
local keep = cur[1] and cur[2] == token and ((state == 'journal' and cur[1] == 'journal') or (state == 'moved' and cur[1] ~= 'importing'))
if keep then
  redis.call('HSET', k.f, 'state', state, 'to', to)
else
  redis.call('UNLINK', k.f, k.j)
  redis.call('HSET', k.f, 'state', state, 'token', token, 'to', to, 'jv', 0, 'reset', 0)
end
return { 'OK' }
