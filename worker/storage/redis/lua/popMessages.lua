--[[
  popMessages: atomically claims and deletes up to `limit` visible, unexpired, unclaimed
  messages, oldest first (no dead-lettering, as for the SQLite driver).
  KEYS: the eleven keys of the queue (lib.lua).
  ARGV: [1] now (ms)  [2] limit  [3] the temporary claim id the popped messages carry
  Returns: MOVED (lib.lua, fence_check) when fenced; else { message... } where a message is {id, body, ttl, created, claimId, claimCount, seq}
           and claimCount includes this pop.
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
local upto = visible_max(k.q)
local out, gone = {}, {}
while #out < limit and examined < CLAIM_SCAN do
  local ids = redis.call('ZRANGEBYSCORE', k.r, '-inf', upto, 'LIMIT', 0, math.min(limit - #out, CLAIM_SCAN - examined))
  examined = examined + #ids
  if #ids == 0 then
    if promotes >= CLAIM_PROMOTES then break end
    promotes = promotes + 1
    if promote(k, now, PROMOTE_STEP) == 0 then break end
  else
    redis.call('ZREM', k.r, unpack(ids))
    local raws = redis.call('HMGET', k.m, unpack(ids))
    for n = 1, #ids do
      if raws[n] then
        local rec = decode(raws[n])
        gone[#gone + 1] = ids[n]
        if rec[R_EXPIRES] > now then
          out[#out + 1] = { ids[n], rec[R_BODY], int(rec[R_TTL]), rec[R_CREATED], cid, rec[R_CC] + 1, rec[R_SEQ] }
        end
      end
    end
  end
end
remove_messages(k, gone)
if journalled then journal(k, gone) end
return out
