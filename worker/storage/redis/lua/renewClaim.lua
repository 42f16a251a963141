--[[
  renewClaim: resets an active claim to expire at now + ttl and extends its messages that would
  expire before it to the extended TTL from now.
  KEYS: [1] the queue's record key (lib.lua, queue_keys).
  ARGV: [1] now (ms)  [2] claim id  [3] ttl (s)  [4] extended ttl (s, queue-policy.ts `claimExtendedTtl`)
  Returns: MOVED (lib.lua, fence_check) when fenced; 1 when renewed, 0 when the claim is missing or expired (the driver throws ClaimNotFound).
  Errors: none raised.
]]
local k = queue_keys(0)
local now = tonumber(ARGV[1])
local cid, ttl, extTtl = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local moved, journalled = fence_check(k)
if moved then return moved end
local raw = redis.call('HGET', k.c, cid)
if not raw then return 0 end
local claim = decode(raw)
if claim[C_EXPIRES] <= now then return 0 end
local cexp = now + ttl * 1000
local extExp = now + extTtl * 1000
local ids = claim[C_IDS]
local held, recs, inflight, exts, extseqs = {}, {}, {}, {}, {}
if #ids > 0 then
  local raws = hmget(k.m, ids)
  for n = 1, #ids do
    if raws[n] then
      local rec = decode_record(raws[n])
      if rec[R_CLAIM] == cid and rec[R_CLAIMEXP] > now and rec[R_EXPIRES] > now then
        rec[R_CLAIMEXP] = cexp
        if rec[R_EXPIRES] < cexp then
          rec[R_TTL] = extTtl
          rec[R_EXPIRES] = extExp
          exts[#exts + 1] = extExp
          exts[#exts + 1] = ids[n]
          extseqs[#extseqs + 1] = int(rec[R_SEQ])
          extseqs[#extseqs + 1] = ids[n]
        end
        held[#held + 1] = ids[n]
        recs[#recs + 1] = ids[n]
        recs[#recs + 1] = encode(rec)
        inflight[#inflight + 1] = cexp
        inflight[#inflight + 1] = ids[n]
      end
    end
  end
end
if #recs > 0 then
  call_chunked('HSET', k.m, recs, CHUNK * 2)
  call_chunked('ZADD', k.i, inflight, CHUNK * 2)
  -- The marks no longer cover the messages whose expiry moved (lib.lua, "Expiry marks").
  uncover(k, exts, extseqs)
  if journalled then journal(k, held) end
end
-- The claim keeps only the messages it still holds: later renewals do less work.
redis.call('HSET', k.c, cid, encode({ ttl, cexp, now, held }))
redis.call('ZADD', k.x, cexp, cid)
return 1
