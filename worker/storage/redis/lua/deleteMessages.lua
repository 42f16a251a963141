--[[
  deleteMessages: the deletes of one or more requests on the queue (the driver coalesces the
  deletes made on one queue in one turn of the event loop into one call, messages.ts), applied
  in ARGV order; each request is all or nothing on its own and answers as if it had run alone
  at that point (an id an earlier request of the call deleted is missing for a later one).
  Two kinds of request:
  - bulk ('b', zaqar/transport/wsgi/v2_0/messages.py): ids, claimed or not; with claim ids
    (check = '1') every existing unexpired message must be held by an active claim in that
    list, else nothing of the request is deleted ('CLAIMED');
  - single ('s'): one message under the claim rules of shared/storage/queue-policy.ts
    (`deleteVerdict`), decided here because they must see the message and its claim atomically
    with the delete.
  KEYS: [1] the queue's record key (lib.lua, queue_keys).
  ARGV: [1] now (ms)  [2] number of requests, then per request:
          'b', check ('1'|'0'), n = number of claim ids, m = number of message ids,
               then the n claim ids, then the m message ids (valid, distinct)
          's', message id, claim id ('' = none given), '1' if a claim id was given
  Returns: MOVED (lib.lua, fence_check) when fenced (nothing done); else a status per request:
           'OK' (deleted, or nothing to delete: missing or expired messages), or the verdict the
           driver turns into a typed error (shared/storage/errors.ts):
           'CLAIMED'     → MessageClaimed (bulk: the claim check failed, nothing deleted)
           'NOT_CLAIMED' → ClaimNotHeld
           'CLAIM_GONE'  → ClaimGone
  Errors: none raised.
]]
local k = queue_keys(0)
local moved, journalled = fence_check(k)
if moved then return moved end
local now = tonumber(ARGV[1])
local nreq = tonumber(ARGV[2])
-- gone: the ids deleted by earlier requests of this call (missing for later ones). All of them
-- are in removed or held, whose records and index entries go in one pass at the end (a command
-- per key for the whole call, not per request): held, those shown held by an active claim (by
-- their record, or by that claim's record: below; lib.lua, remove_claimed); removed, the others.
local gone, removed, held = {}, {}, {}
local out = {}
-- Claim records a bulk request may read for its check, at most (see below).
local CLAIM_LOOKUPS = 16

--- The verdict on deleting one message (single delete), its record read here.
local function verdict(id, cid, given)
  if gone[id] then return 'OK' end
  local raw = redis.call('HGET', k.m, id)
  if not raw then return 'OK' end
  local rec = decode_record(raw)
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
  gone[id] = true
  if active then held[#held + 1] = id else removed[#removed + 1] = id end
  return 'OK'
end

local p = 3
for r = 1, nreq do
  if ARGV[p] == 's' then
    out[r] = verdict(ARGV[p + 1], ARGV[p + 2], ARGV[p + 3] == '1')
    p = p + 4
  else
    local check, nclaims, nids = ARGV[p + 1] == '1', tonumber(ARGV[p + 2]), tonumber(ARGV[p + 3])
    local c0 = p + 4
    local i0 = c0 + nclaims
    p = i0 + nids
    local ids = {}
    for n = i0, p - 1 do
      if not gone[ARGV[n]] then ids[#ids + 1] = ARGV[n] end
    end
    local status = 'OK'
    -- Checked requests: which ids are held by a listed active claim (true), in step with ids.
    local claimed = {}
    if check and #ids > 0 then
      -- An id an active claim of the list holds passes on the claim's record alone: a message
      -- leaves its claim's ids only by the claim running out or being released (then the claim
      -- is not active or not there), and never expires before it (lib.lua). Only the other ids
      -- have their own record read, one decode per claim instead of one per message. A request
      -- naming more than CLAIM_LOOKUPS claims (clients name the one they hold) has every record
      -- read instead, so its work stays bounded by its ids, as before.
      local allowed, holds = {}, {}
      local lookup = nclaims <= CLAIM_LOOKUPS
      for n = c0, i0 - 1 do
        local cid = ARGV[n]
        allowed[cid] = true
        local raw = lookup and redis.call('HGET', k.c, cid)
        if raw then
          local claim = decode(raw)
          if claim[C_EXPIRES] > now then
            for _, id in ipairs(claim[C_IDS]) do holds[id] = true end
          end
        end
      end
      local rest, at = {}, {}
      for n = 1, #ids do
        if holds[ids[n]] then
          claimed[n] = true
        else
          rest[#rest + 1] = ids[n]
          at[#rest] = n
        end
      end
      local raws = #rest > 0 and hmget(k.m, rest) or {}
      for j = 1, #rest do
        if raws[j] then
          local rec = decode_record(raws[j])
          if rec[R_EXPIRES] > now then
            if not (rec[R_CLAIM] ~= '' and rec[R_CLAIMEXP] > now and allowed[rec[R_CLAIM]]) then
              status = 'CLAIMED'
              break
            end
            claimed[at[j]] = true
          end
        end
      end
    end
    if status == 'OK' then
      for n = 1, #ids do
        gone[ids[n]] = true
        if claimed[n] then held[#held + 1] = ids[n] else removed[#removed + 1] = ids[n] end
      end
    end
    out[r] = status
  end
end
remove_messages(k, removed)
remove_claimed(k, held)
-- Bulk ids not in the queue are journalled too: harmless (their record reads as missing).
if journalled then
  journal(k, removed)
  journal(k, held)
end
return out
