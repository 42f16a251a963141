--[[
  claimMessages: creates one or more claims on the queue (the driver coalesces concurrent
  createClaim calls on one queue into one call); each takes up to its limit of messages that are
  visible, unexpired and not actively claimed, oldest first, from the ready index and past the
  ready cursor (lib.lua, next_ready), so claims never scan past claimed messages. Requests are
  served in ARGV order and never share a message.
  A message already claimed dlqmax times is moved to the dead-letter queue instead (the queue
  policy's dead-letter rule, shared/storage/queue-policy.ts, resolved into the queue record),
  when that queue is in this pool; with ARGV[3] = '1' a DLQ other than ARGV[2] is not filled here:
  its due messages stay in the queue (back in the ready index, unclaimed) and are reported, at
  most DUE_MAX per call, for the proxy to move across pools (docs/pools.md).
  KEYS: [1] the queue's record key (lib.lua, queue_keys); [2] its dead-letter queue's record key, when
        the driver believes it has one (same project, so the same Redis on a standalone server);
        with ARGV[3] = '2' (a Redis Cluster pool), [2] the queue's dead-letter outbox instead.
  ARGV: [1] now (ms)  [2] the dead-letter queue name the driver has keys for ('' none)
        [3] '1': defer any other DLQ (the proxy checked ARGV[2] is local), '0': the driver's guess,
            '2': a Cluster pool (the DLQ is in another slot): messages due for the DLQ ARGV[2] (or,
            when ARGV[2] is '*', for whichever DLQ the queue names) leave the queue for its
            outbox (HASH id -> JSON of the message and its DLQ), which the driver empties into
            the DLQ in steps (claims.ts); messages due for any other DLQ are deferred as with '1'
        [4] number of requests, then per request: claimId, ttl (s), extended ttl (s: the TTL a
            message that would expire before the claim gets, queue-policy.ts `claimExtendedTtl`),
            limit
  Returns: MOVED (lib.lua, fence_check) when fenced; { 'OK', dlqCreated (1 if a move created the DLQ;
           with ARGV[3] = '2': how many messages wait in the outbox), deferred DLQ name or '', deferred ids,
           dlqttl or '', messages moved to the DLQ (not counting the outbox), result per request } where a
           result is {} when nothing was claimed, else
           { claimId, message... } and a message is six fields (lib.lua, put_view);
           or { 'DLQ', actual dlq name } when ARGV[3] is '0' and ARGV[2] is stale: nothing was
           changed, the driver calls again with the right keys.
  Errors: none raised.
]]
local k = queue_keys(0)
local now = tonumber(ARGV[1])
local nreq = tonumber(ARGV[4])
local outbox = ARGV[3] == '2'
local defer = ARGV[3] == '1' or outbox
local DUE_MAX = 100
local moved, journalled = fence_check(k)
if moved then return moved end
-- Whether the queue exists: its record's `created` (lib.lua, queue_exists), not its metadata,
-- which may be 64 KiB of JSON that Lua would copy and hash on every claim.
local qf = redis.call('HMGET', k.q, 'created', 'dlq', 'dlqmax', 'dlqttl', 'stagelo', 'rc')
if not queue_exists(k, qf[1]) then
  local out = { 'OK', 0, '', {}, '', 0 }
  for _ = 1, nreq do out[#out + 1] = {} end
  return out
end
local dlqname = qf[2] or ''
-- The DLQ's keys are here when the driver passed its record key second (a Cluster pool's second
-- key is the outbox, never a queue's).
local here = not outbox and dlqname == ARGV[2] and #KEYS >= 2 * NKEYS
if not defer and (dlqname ~= ARGV[2] or (dlqname ~= '' and not here)) then return { 'DLQ', dlqname } end
local dk, dlqmax, dlqttl = nil, nil, nil
if dlqname ~= '' then
  if here then dk = queue_keys(NKEYS) end
  -- A dead-letter queue fenced by a migration (moving or moved away) takes nothing here: its
  -- due messages are reported instead, for the proxy to move wherever the queue lives.
  if dk then
    local ds = redis.call('HGET', dk.f, 'state')
    if ds and ds ~= 'journal' then dk = nil end
  end
  dlqmax = tonumber(qf[3])
  dlqttl = tonumber(qf[4])
end
local dlqCreated = 0
-- Messages moved to the dead-letter queue by this call (the driver counts them for metrics).
local dlqMoved = 0
-- Messages due for a DLQ that is not here: reported (ids) and put back in the ready index (back).
local due, back = {}, {}
-- Outbox mode: messages leaving for the DLQ in another slot (id, JSON pairs) and their ids.
local outs, gone = {}, {}
local to_outbox = outbox and dlqname ~= '' and (ARGV[2] == '*' or ARGV[2] == dlqname)
-- Ids whose state this call changes (claimed, moved to the DLQ), journalled under a journal fence.
local jids = {}
-- While a large post is staged into the DLQ (lib.lua), moves wait: a rollback of that post
-- removes every message above its first seq, a moved one included.
local dlq_staged = dk ~= nil and redis.call('HEXISTS', dk.q, 'stage') == 1

--- Moves a message to the dead-letter queue's tail, unclaimed, visible now.
local function dead_letter(id, rec)
  if journalled then jids[#jids + 1] = id end
  if ensure_queue(dk.q, now) == 1 then dlqCreated = 1 end
  remove_messages(k, { id })
  local seq = redis.call('HINCRBY', dk.q, 'seq', 1)
  local ttl, expires = rec[R_TTL], rec[R_EXPIRES]
  if dlqttl then ttl, expires = dlqttl, now + dlqttl * 1000 end
  redis.call('HSET', dk.m, id, encode({ seq, rec[R_CREATED], ttl, expires, now, rec[R_CC], '', 0, rec[R_CLIENT], rec[R_BODY] }))
  redis.call('ZADD', dk.a, seq, id)
  redis.call('ZADD', dk.r, seq, id)
  uncover(dk, { expires, id }, { seq, id })
  dlqMoved = dlqMoved + 1
end

promote(k, now, PROMOTE_STEP)
-- Bounded work (issue 11): examined entries and promote steps are budgeted per call.
local examined, promotes = 0, 1
-- Messages of a large post still being staged are not visible yet (lib.lua).
local upto = upto_of(qf[5])
-- The ready cursor (lib.lua), moved locally and written back once.
local rc0 = qf[6]
local rc = rc0
local out = { 'OK', 0, '', due, qf[4] or '', 0 }
local p = 5
for _ = 1, nreq do
  local cid, ttl, extTtl, limit = ARGV[p], tonumber(ARGV[p + 1]), tonumber(ARGV[p + 2]), tonumber(ARGV[p + 3])
  p = p + 4
  local cexp = now + ttl * 1000
  local extExp = now + extTtl * 1000
  -- Scores as text built once per request (lib.lua, int): every message of the claim shares them.
  local cexps, extExps = int(cexp), int(extExp)
  -- Reply TTLs as text, by TTL (int_by: once per distinct TTL, not per message).
  local ttls = {}
  -- exts / extseqs: the messages whose expiry the claim extends, for e and s (lib.lua, "Expiry
  -- marks": the marks no longer cover them).
  -- res: the request's reply, the claim id and then its messages (put_view); got: how many.
  local res, got = { cid }, 0
  local recs, inflight, exts, extseqs, taken, dead = {}, {}, {}, {}, {}, {}
  while got < limit and #due < DUE_MAX and examined < CLAIM_SCAN do
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
        local id, raw = ids[n], raws[n]
        if raw then
          local rec = decode_record(raw)
          if past[id] and not fresh(rec) then
            -- Delayed or claimed: its own index (d, i) brings it to r in time (lib.lua).
          elseif rec[R_EXPIRES] <= now then
            dead[#dead + 1] = id
          elseif dk and rec[R_CC] >= dlqmax and not dlq_staged then
            dead_letter(id, rec)
          elseif to_outbox and dlqmax and rec[R_CC] >= dlqmax then
            -- Text (cjson), not the msgpack record: the driver carries it to the DLQ's slot.
            outs[#outs + 1] = id
            outs[#outs + 1] = cjson.encode({ q = dlqname, t = qf[4] or '', s = rec[R_SEQ], c = rec[R_CREATED], l = rec[R_TTL], x = rec[R_EXPIRES], n = rec[R_CC], k = rec[R_CLIENT], b = rec[R_BODY] })
            gone[#gone + 1] = id
            if journalled then jids[#jids + 1] = id end
          elseif not dk and dlqmax and rec[R_CC] >= dlqmax then
            due[#due + 1] = id
            back[#back + 1] = rec[R_SEQ]
            back[#back + 1] = id
          else
            rec[R_CC] = rec[R_CC] + 1
            rec[R_CLAIM] = cid
            rec[R_CLAIMEXP] = cexp
            if rec[R_EXPIRES] < cexp then
              rec[R_TTL] = extTtl
              rec[R_EXPIRES] = extExp
              exts[#exts + 1] = extExps
              exts[#exts + 1] = id
              extseqs[#extseqs + 1] = int(rec[R_SEQ])
              extseqs[#extseqs + 1] = id
            end
            recs[#recs + 1] = id
            recs[#recs + 1] = encode(rec)
            inflight[#inflight + 1] = cexps
            inflight[#inflight + 1] = id
            taken[#taken + 1] = id
            if journalled then jids[#jids + 1] = id end
            put_view(res, id, rec, int_by(ttls, rec[R_TTL], rec[R_TTL]), cid)
            got = got + 1
          end
        end
      end
    end
  end
  remove_messages(k, dead)
  if got == 0 then
    out[#out + 1] = {}
  else
    call_chunked('HSET', k.m, recs, CHUNK * 2)
    call_chunked('ZADD', k.i, inflight, CHUNK * 2)
    uncover(k, exts, extseqs)
    redis.call('HSET', k.c, cid, encode({ ttl, cexp, now, taken }))
    redis.call('ZADD', k.x, cexps, cid)
    out[#out + 1] = res
  end
end
if rc ~= rc0 then redis.call('HSET', k.q, 'rc', rc) end
if #back > 0 then
  call_chunked('ZADD', k.r, back, CHUNK * 2)
  out[3] = dlqname
end
out[2] = dlqCreated
out[6] = dlqMoved
if outbox then
  if #outs > 0 then
    remove_messages(k, gone)
    call_chunked('HSET', KEYS[NKEYS + 1], outs, CHUNK * 2)
  end
  out[2] = redis.call('HLEN', KEYS[NKEYS + 1])
end
if journalled then journal(k, jids) end
return out
