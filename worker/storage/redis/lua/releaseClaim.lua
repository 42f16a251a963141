--[[
  releaseClaim: releases a claim; its messages become claimable at once (back in the ready
  index at their FIFO place), claim counts kept. A missing claim is a no-op.
  KEYS: [1] the queue's record key (lib.lua, queue_keys).
  ARGV: [1] now (ms)  [2] claim id
  Returns: 1 if the claim existed, else 0; MOVED (lib.lua, fence_check) when fenced.
  Errors: none.
]]
local k = queue_keys(0)
local cid = ARGV[2]
local moved, journalled = fence_check(k)
if moved then return moved end
local raw = redis.call('HGET', k.c, cid)
if not raw then return 0 end
local ids = decode(raw)[C_IDS]
local freed, recs = {}, {}
if #ids > 0 then
  local raws = hmget(k.m, ids)
  for n = 1, #ids do
    if raws[n] then
      local rec = decode_record(raws[n])
      if rec[R_CLAIM] == cid then
        rec[R_CLAIM] = ''
        rec[R_CLAIMEXP] = 0
        recs[#recs + 1] = ids[n]
        recs[#recs + 1] = encode(rec)
        freed[#freed + 1] = ids[n]
      end
    end
  end
end
if #recs > 0 then
  call_chunked('HSET', k.m, recs, CHUNK * 2)
  to_ready(k, k.i, freed)
end
-- The claim itself goes too: journalled under its own id, whose record reads as missing.
if journalled then
  freed[#freed + 1] = cid
  journal(k, freed)
end
redis.call('HDEL', k.c, cid)
redis.call('ZREM', k.x, cid)
return 1
