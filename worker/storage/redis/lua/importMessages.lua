--[[
  importMessages: applies one batch of a migration to the queue's copy, which must hold the
  `importing` fence `token` (shared/storage/migration.ts, ImportChange), in this order: reset
  (empties the copy, keeps the record and the fence), metadata (creates the queue when absent),
  upserts (a new id is appended with a fresh seq, so the copy keeps the order given; a known id
  has its mutable state replaced and keeps its place), claims (replacing one of the same id; a
  claim's message list gains the imported messages that name it), removals (of messages, and of
  claims: a released claim is journalled under its own id).
  KEYS: [1] the queue's record key (lib.lua, queue_keys).
  ARGV: [1] now (ms)  [2] token  [3] reset ('1'|'0')  [4] '1' when metadata follows
        [5] metadata JSON text  [6..11] maxpost, ttl, delay, dlq, dlqmax, dlqttl ('' absent)
        [12] number of records, then per record: id, created, ttl, expires, visible, claimCount,
             claimId ('' none), claimExpires, clientId, body
        then the number of claims, then per claim: id, ttl, expires, updated
        then the number of ids to remove, then the ids
  Returns: { 'OK', created (1 if the record was created) } or { 'CONFLICT', state, token, to }
           ({ 'CONFLICT' } when there is no fence).
  Errors: none.
]]
local k = queue_keys(0)
local now = tonumber(ARGV[1])
local cur = redis.call('HMGET', k.f, 'state', 'token', 'to')
if not cur[1] then return { 'CONFLICT' } end
if cur[2] ~= ARGV[2] or cur[1] ~= 'importing' then return { 'CONFLICT', cur[1], cur[2], cur[3] } end
if ARGV[3] == '1' then
  redis.call('UNLINK', k.m, k.a, k.r, k.d, k.i, k.e, k.c, k.x, k.s, k.t)
  -- The expiry marks (lib.lua) start afresh on the emptied copy.
  if redis.call('EXISTS', k.q) == 1 then
    redis.call('HDEL', k.q, 'emax', 'em', 'eb', 'ec')
    redis.call('HSET', k.q, 'el', '1')
  end
end
local created = 0
local names = { 'maxpost', 'ttl', 'delay', 'dlq', 'dlqmax', 'dlqttl' }
if ARGV[4] == '1' then
  created = ensure_queue(k.q, now)
  redis.call('HSET', k.q, 'meta', ARGV[5])
  for n = 1, #names do
    if ARGV[n + 5] == '' then
      redis.call('HDEL', k.q, names[n])
    else
      redis.call('HSET', k.q, names[n], ARGV[n + 5])
    end
  end
end
local p = 12
local nrec = tonumber(ARGV[p])
p = p + 1
local byClaim = {}
if nrec > 0 and ensure_queue(k.q, now) == 1 then created = 1 end
-- Batched: one HMGET for the records held, one HINCRBY for the new ones' seqs and one variadic
-- call per index, instead of six calls per record (the target's Redis time per copied message
-- was ~17 µs, most of it in per-record calls). An id given twice takes its last state and its
-- first place.
local order, last = {}, {}
for i = 1, nrec do
  local id = ARGV[p]
  if not last[id] then order[#order + 1] = id end
  last[id] = p
  p = p + 10
end
local held = hmget(k.m, order)
local nnew = 0
for i = 1, #order do
  if not held[i] then nnew = nnew + 1 end
end
local nextseq = 0
if nnew > 0 then nextseq = redis.call('HINCRBY', k.q, 'seq', nnew) - nnew end
local stale, recs, alls, readys, delays, inflight = {}, {}, {}, {}, {}, {}
-- Expiries (lib.lua, "Expiry marks"): a new message is covered by the marks as a post's would
-- be; a held one whose state is replaced goes to e and s, its expiry may have moved.
local acc = new_acc(false, redis.call('HMGET', k.q, 'el', 'emax', 'em'))
for i = 1, #order do
  local id = order[i]
  local q = last[id]
  local created_at, ttl, expires, visible, cc, claim, cexp, client, body =
    tonumber(ARGV[q + 1]), tonumber(ARGV[q + 2]), tonumber(ARGV[q + 3]), tonumber(ARGV[q + 4]),
    tonumber(ARGV[q + 5]), ARGV[q + 6], tonumber(ARGV[q + 7]), ARGV[q + 8], ARGV[q + 9]
  if claim == '' then cexp = 0 end
  local seq
  if held[i] then
    local old = decode_record(held[i])
    seq = old[R_SEQ]
    body = old[R_BODY]
    stale[#stale + 1] = id
  else
    nextseq = nextseq + 1
    seq = nextseq
    alls[#alls + 1] = seq
    alls[#alls + 1] = id
  end
  recs[#recs + 1] = id
  recs[#recs + 1] = encode({ seq, created_at, ttl, expires, visible, cc, claim, cexp, client, body })
  if held[i] then
    add_uncovered(acc, id, int(seq), int(expires))
  else
    place_expiry(acc, id, int(seq), expires, int(expires))
  end
  -- Indexed as a post, a claim or a delay would have left it (lib.lua: exactly one of r / d / i).
  if claim ~= '' and cexp > now then
    inflight[#inflight + 1] = cexp
    inflight[#inflight + 1] = id
    local ids = byClaim[claim]
    if not ids then
      ids = {}
      byClaim[claim] = ids
    end
    ids[#ids + 1] = id
  elseif visible > now then
    delays[#delays + 1] = visible
    delays[#delays + 1] = id
  else
    readys[#readys + 1] = seq
    readys[#readys + 1] = id
  end
end
-- A held record leaves its old index first (it may move between r, d and i).
if #stale > 0 then
  call_chunked('ZREM', k.r, stale)
  call_chunked('ZREM', k.d, stale)
  call_chunked('ZREM', k.i, stale)
end
local pairstep = CHUNK * 2
if #alls > 0 then call_chunked('ZADD', k.a, alls, pairstep) end
if #recs > 0 then call_chunked('HSET', k.m, recs, pairstep) end
write_expiries(k, acc, {})
if #readys > 0 then call_chunked('ZADD', k.r, readys, pairstep) end
if #delays > 0 then call_chunked('ZADD', k.d, delays, pairstep) end
if #inflight > 0 then call_chunked('ZADD', k.i, inflight, pairstep) end

--- The claim record `cid` with `extra` message ids added (none twice); `fields` replaces its
--- ttl, expiry and update time when given.
local function put_claim(cid, fields, extra)
  local raw = redis.call('HGET', k.c, cid)
  local claim
  if raw then claim = decode(raw) elseif fields then claim = { 0, 0, 0, {} } else return end
  if fields then claim[C_TTL], claim[C_EXPIRES], claim[C_UPDATED] = fields[1], fields[2], fields[3] end
  local seen = {}
  for _, id in ipairs(claim[C_IDS]) do seen[id] = true end
  for _, id in ipairs(extra or {}) do
    if not seen[id] then
      seen[id] = true
      claim[C_IDS][#claim[C_IDS] + 1] = id
    end
  end
  redis.call('HSET', k.c, cid, encode(claim))
  redis.call('ZADD', k.x, claim[C_EXPIRES], cid)
end

local nclaims = tonumber(ARGV[p])
p = p + 1
if nclaims > 0 and ensure_queue(k.q, now) == 1 then created = 1 end
for _ = 1, nclaims do
  local cid = ARGV[p]
  put_claim(cid, { tonumber(ARGV[p + 1]), tonumber(ARGV[p + 2]), tonumber(ARGV[p + 3]) }, byClaim[cid])
  byClaim[cid] = nil
  p = p + 4
end
-- Messages naming a claim imported by an earlier batch join it.
for cid, ids in pairs(byClaim) do put_claim(cid, nil, ids) end
local nremove = tonumber(ARGV[p])
p = p + 1
local gone = {}
for i = p, p + nremove - 1 do gone[#gone + 1] = ARGV[i] end
remove_messages(k, gone)
-- A removed id may name a claim (a release journals the claim's id).
if #gone > 0 then
  call_chunked('HDEL', k.c, gone)
  call_chunked('ZREM', k.x, gone)
end
return { 'OK', created }
