--[[
  getMessages: the messages among the given ids that exist and have not expired, claimed,
  delayed or not, in FIFO order (one id or many: getMessage and getMessages).
  KEYS: [1] the queue's record key (lib.lua, queue_keys); reads m, f.
  ARGV: [1] now (ms)  [2..] message ids (valid, distinct)
  Returns: MOVED (lib.lua, fence_check) when fenced; else { message... } where a message is six fields (lib.lua,
           put_view), sorted by seq.
  Errors: none.
]]
local k = queue_keys(0)
local moved, _ = fence_check(k)
if moved then return moved end
local now = tonumber(ARGV[1])
local ids = {}
for n = 2, #ARGV do ids[#ids + 1] = ARGV[n] end
local raws = hmget(k.m, ids)
local found = {}
for n = 1, #ids do
  if raws[n] then
    local rec = decode_record(raws[n])
    if rec[R_EXPIRES] > now then found[#found + 1] = { ids[n], rec } end
  end
end
table.sort(found, function(x, y) return x[2][R_SEQ] < y[2][R_SEQ] end)
local out = {}
for n = 1, #found do add_view(out, found[n][1], found[n][2], now) end
return out
