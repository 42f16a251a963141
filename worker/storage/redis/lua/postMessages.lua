--[[
  postMessages: appends the messages of one or more post requests to the queue (the driver
  coalesces concurrent posts to one queue into one call, at most POST_CHUNK messages in all),
  creating the queue if needed. Each request is all or nothing on its own; requests are applied
  in ARGV order, which is FIFO order. A request with an idempotency key whose record exists
  stores nothing and answers the recorded ids; otherwise the record is written with the
  messages (docs/api.md, "Safe retries").
  KEYS: [1] the queue's record key (lib.lua, queue_keys); [2] its listeners' mark (keys.ts,
        listenQueue.lua); then one idempotency record key (keys.ts) per request that has a key.
  ARGV: [1] now (ms)  [2] number of requests, then per request:
          clientId, defaultTtl (s), postBytes, queuePolicy ('1'|'0': whether the queue's policy
          applies, PostOptions.queuePolicy), count,
          idempotency KEYS index (0 = none), idempotency window (ms),
          maxMessages (the queue's quota, PostOptions.maxMessages; 0 = none),
          then the request's messages as lib.lua `append_messages` reads them (messages.ts,
          `postArgs`): ttl of all (s, '' = default, '*' = each its own), delay of all (the
          same), every id (one text), then per message its ttl (when '*'), its delay (when
          '*') and its body (JSON text)
  Returns: MOVED (lib.lua, fence_check) when fenced (nothing done); { 'BUSY' } when a large post is being staged on the queue (nothing done: the driver
           waits and calls again), else { created (1 if this call created the queue),
           listening (1 if the post is to be announced: listenQueue.lua), status per request }:
           status 0 when stored; { ids comma-separated } when an idempotency
           record answered; the queue's _max_messages_post_size (as stored, a string) that
           the request exceeded; or -maxMessages when the request would have put the queue over
           its quota (those two stored nothing; the queue stays created).
  Errors: none.
]]
local k = queue_keys(0)
local now = tonumber(ARGV[1])
local nreq = tonumber(ARGV[2])
-- Posts are not journalled (the copy cursor reads them); a fenced queue is not created either.
local moved, _ = fence_check(k)
if moved then return moved end
-- The queue record read once: the stage (lib.lua, queue_free), whether the queue exists, the
-- post settings (post_fields), the last seq, which this call advances locally and writes back
-- once at the end (not a HINCRBY per request), and the ready cursor (lib.lua).
local qr = redis.call('HMGET', k.q, 'stage', 'stagedl', 'created', 'maxpost', 'ttl', 'delay', 'seq', 'rc', 'el', 'emax', 'em')
if not stage_free(k, now, '', qr[1], qr[2]) then return { 'BUSY' } end
-- Every queue record has `created` (ensure_queue, createQueue); EXISTS only when it is missing.
local created = 0
if not qr[3] and redis.call('EXISTS', k.q) == 0 then created = 1 end
local qf = { qr[4], qr[5], qr[6] }
local seq0 = tonumber(qr[7]) or 0
if created == 1 then seq0 = first_seq(now) end
-- A queue record from before the ready cursor gets one now, at its last seq: r holds every ready
-- message up to there, and what this call appends comes after it.
local new_rc = created == 0 and not qr[8]
local seq = seq0
-- Expiry marks (lib.lua): a new queue has them; a queue record from before them takes them once
-- it is empty (every message it holds then is in e, none covered).
local marks = { qr[9], qr[10], qr[11] }
local take_marks = false
if created == 1 then
  marks = { '1', false, false }
elseif not qr[9] and redis.call('EXISTS', k.a) == 0 then
  marks, take_marks = { '1', false, false }, true
end
local acc = new_acc(true, marks)
-- Whether to announce the post (listenQueue.lua): a listener marked the queue, or this call
-- creates it (rare, and a waiter on a queue not created yet is woken even if its mark was lost).
local listening = 0
if created == 1 or (tonumber(redis.call('GET', KEYS[NKEYS + 1])) or 0) > now then listening = 1 end
local out = { created, listening }
local p = 3
-- The queue's unexpired messages (quota checks), read once, plus what this call appended.
local live = nil
for _ = 1, nreq do
  local client, defttl, bytes, limits, count, ik, window, maxmsgs =
    ARGV[p], tonumber(ARGV[p + 1]), tonumber(ARGV[p + 2]), ARGV[p + 3] == '1', tonumber(ARGV[p + 4]),
    tonumber(ARGV[p + 5]), ARGV[p + 6], tonumber(ARGV[p + 7])
  p = p + 8
  -- This request's messages start at `at`, the next request where they end.
  local at = p
  p = messages_end(at, count)
  if maxmsgs > 0 and live == nil then live = live_count(k, now) end
  local maxpost, maxraw, ttl0, honour, delay0 = post_settings(qf, defttl, limits)
  local prev = false
  if ik > 0 then prev = redis.call('GET', KEYS[ik]) end
  if prev then
    out[#out + 1] = { prev }
  elseif limits and maxpost and bytes > maxpost then
    out[#out + 1] = maxraw
  elseif maxmsgs > 0 and live + count > maxmsgs then
    out[#out + 1] = -maxmsgs
  else
    local ids = {}
    if count > 0 then seq = append_messages(acc, now, client, ttl0, honour, delay0, count, at, ids, seq) end
    if ik > 0 then redis.call('SET', KEYS[ik], table.concat(ids, ','), 'PX', window) end
    if live then live = live + count end
    out[#out + 1] = 0
  end
end
-- A queue this call creates exists whatever its requests came to (as Zaqar, posts create queues
-- lazily, even failed ones).
-- The record's fields are written once, with the expiry marks' (write_acc).
local qset = {}
if created == 1 then
  qset = new_queue_fields(now, seq, seq0)
elseif new_rc then
  qset = { 'seq', int(seq), 'rc', int(seq0) }
elseif seq ~= seq0 then
  qset = { 'seq', int(seq) }
end
if take_marks then
  qset[#qset + 1] = 'el'
  qset[#qset + 1] = '1'
end
write_acc(k, acc, qset)
return out
