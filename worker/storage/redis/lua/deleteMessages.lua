--[[
  deleteMessages: bulk delete by ids (zaqar/transport/wsgi/v2_0/messages.py), claimed or not. With claim ids, every
  existing unexpired message must be held by an active claim in that list, else nothing is
  deleted. Atomic.
  KEYS: the eleven keys of the queue (lib.lua).
  ARGV: [1] now (ms)  [2] n = number of claim ids  [3] '1' to check claims, '0' not to
        [4 .. 3+n] claim ids  [4+n ..] message ids (valid, distinct)
  Returns: MOVED (lib.lua, fence_check) when fenced; 'OK', or 'CLAIMED' (→ MessageClaimed) when the claim check fails.
  Errors: none raised.
]]
local k = queue_keys(0)
local moved, journalled = fence_check(k)
if moved then return moved end
local now = tonumber(ARGV[1])
local nclaims = tonumber(ARGV[2])
local check = ARGV[3] == '1'
local allowed = {}
for n = 4, 3 + nclaims do allowed[ARGV[n]] = true end
local ids = {}
for n = 4 + nclaims, #ARGV do ids[#ids + 1] = ARGV[n] end
if check then
  local raws = hmget(k.m, ids)
  for n = 1, #ids do
    if raws[n] then
      local rec = decode(raws[n])
      if rec[R_EXPIRES] > now and not (rec[R_CLAIM] ~= '' and rec[R_CLAIMEXP] > now and allowed[rec[R_CLAIM]]) then
        return 'CLAIMED'
      end
    end
  end
end
remove_messages(k, ids)
-- Ids not in the queue are journalled too: harmless (their record reads as missing).
if journalled then journal(k, ids) end
return 'OK'
