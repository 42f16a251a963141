--[[
  popMessages: atomically claims and deletes up to `limit` visible, unexpired, unclaimed
  messages, oldest first (no dead-lettering, as for the SQLite driver).
  KEYS: [1] the queue's record key (lib.lua, queue_keys).
  ARGV: [1] now (ms)  [2] limit  [3] the temporary claim id the popped messages carry
  Returns: MOVED (lib.lua, fence_check) when fenced; else { message... } where a message is six fields (lib.lua,
           put_view), its claim id the pop's and its claim count including this pop.
  Errors: none.
]]
local k = queue_keys(0)
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cid = ARGV[3]
local moved, journalled = fence_check(k)
if moved then return moved end
if redis.call('EXISTS', k.q) == 0 then return {} end
promote(k, now, PROMOTE_STEP)
-- Bounded work (issue 11): examined entries and promote steps are budgeted per call.
local examined, promotes = 0, 1
-- The stage (lib.lua, upto_of) and the ready cursor, moved locally and written back once.
local qs = redis.call('HMGET', k.q, 'stagelo', 'rc')
local upto = upto_of(qs[1])
local rc0 = qs[2]
local rc = rc0
local out, gone, got = {}, {}, 0
while got < limit and examined < CLAIM_SCAN do
  local ids, past
  ids, past, rc = next_ready(k, rc, upto, math.min(limit - got, CLAIM_SCAN - examined))
  examined = examined + #ids
  if #ids == 0 then
    if promotes >= CLAIM_PROMOTES then break end
    promotes = promotes + 1
    if promote(k, now, PROMOTE_STEP) == 0 then break end
  else
    local raws = redis.call('HMGET', k.m, unpack(ids))
    for n = 1, #ids do
      local rec = raws[n] and decode_record(raws[n])
      -- Past the cursor, a delayed or claimed message is left to its own index (lib.lua).
      if rec and (not past[ids[n]] or fresh(rec)) then
        gone[#gone + 1] = ids[n]
        if rec[R_EXPIRES] > now then
          rec[R_CC] = rec[R_CC] + 1
          put_view(out, ids[n], rec, int(rec[R_TTL]), cid)
          got = got + 1
        end
      end
    end
  end
end
if rc ~= rc0 then redis.call('HSET', k.q, 'rc', rc) end
remove_messages(k, gone)
if journalled then journal(k, gone) end
return out
