--[[
  deleteMessage: deletes one message under the claim rules of shared/storage/queue-policy.ts
  (`deleteVerdict`), decided here because they must see the message and its claim atomically
  with the delete.
  KEYS: the eleven keys of the queue (lib.lua).
  ARGV: [1] now (ms)  [2] message id  [3] claim id ('' = none given)  [4] '1' if a claim id was given
  Returns: MOVED (lib.lua, fence_check) when fenced; 'OK' (deleted, or nothing to delete: missing or expired message), or the verdict that
           the driver turns into a typed error (shared/storage/errors.ts):
           'CLAIMED'     → MessageClaimed
           'NOT_CLAIMED' → ClaimNotHeld
           'CLAIM_GONE'  → ClaimGone
  Errors: none raised.
]]
local k = queue_keys(0)
local moved, journalled = fence_check(k)
if moved then return moved end
local now = tonumber(ARGV[1])
local id, cid, given = ARGV[2], ARGV[3], ARGV[4] == '1'
local raw = redis.call('HGET', k.m, id)
if not raw then return 'OK' end
local rec = decode(raw)
if rec[R_EXPIRES] <= now then return 'OK' end
local active = rec[R_CLAIM] ~= '' and rec[R_CLAIMEXP] > now
if not given then
  if active then return 'CLAIMED' end
elseif not active then
  return 'NOT_CLAIMED'
elseif cid ~= rec[R_CLAIM] then
  local other = redis.call('HGET', k.c, cid)
  if other and decode(other)[C_EXPIRES] > now then return 'CLAIMED' end
  return 'CLAIM_GONE'
end
remove_messages(k, { id })
if journalled then journal(k, { id }) end
return 'OK'
