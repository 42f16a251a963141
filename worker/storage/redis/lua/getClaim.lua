--[[
  getClaim: an active claim with those of its messages that still exist and are still held by it.
  KEYS: [1] the queue's record key (lib.lua, queue_keys); reads m, c, f.
  ARGV: [1] now (ms)  [2] claim id
  Returns: MOVED (lib.lua, fence_check) when fenced; {} when the claim is missing or expired, else { ttl (s, string), updated (ms),
           message... } where a message is six fields (lib.lua, put_view).
  Errors: none.
]]
local k = queue_keys(0)
local moved, _ = fence_check(k)
if moved then return moved end
local now = tonumber(ARGV[1])
local cid = ARGV[2]
local raw = redis.call('HGET', k.c, cid)
if not raw then return {} end
local claim = decode(raw)
if claim[C_EXPIRES] <= now then return {} end
local out = { num(claim[C_TTL]), claim[C_UPDATED] }
local ids = claim[C_IDS]
if #ids == 0 then return out end
local raws = hmget(k.m, ids)
for n = 1, #ids do
  if raws[n] then
    local rec = decode_record(raws[n])
    if rec[R_CLAIM] == cid and rec[R_CLAIMEXP] > now and rec[R_EXPIRES] > now then
      add_view(out, ids[n], rec, now)
    end
  end
end
return out
