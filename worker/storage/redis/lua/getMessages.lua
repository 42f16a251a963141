--[[
  getMessages: the messages among the given ids that exist and have not expired, claimed,
  delayed or not, in FIFO order (one id or many: getMessage and getMessages).
  KEYS: the thirteen keys of the queue (lib.lua); reads m, f.
  ARGV: [1] now (ms)  [2..] message ids (valid, distinct)
  Returns: MOVED (lib.lua, fence_check) when fenced; else { message... } where a message is {id, body, ttl, created, claimId or '', claimCount,
           seq}, sorted by seq.
  Errors: none.
]]
local k = queue_keys(0)
local moved, _ = fence_check(k)
if moved then return moved end
local now = tonumber(ARGV[1])
local ids = {}
for n = 2, #ARGV do ids[#ids + 1] = ARGV[n] end
local raws = hmget(k.m, ids)
local out = {}
for n = 1, #ids do
  if raws[n] then
    local rec = decode(raws[n])
    if rec[R_EXPIRES] > now then out[#out + 1] = view(ids[n], rec, now) end
  end
end
table.sort(out, function(x, y) return x[7] < y[7] end)
return out
