--[[
  importMessages: applies one batch of a migration to the queue's copy, which must hold the
  `importing` fence `token` (shared/storage/migration.ts, ImportChange), in this order: reset
  (empties the copy, keeps the record and the fence), metadata (creates the queue when absent),
  upserts (a new id is appended with a fresh seq, so the copy keeps the order given; a known id
  has its mutable state replaced and keeps its place), claims (replacing one of the same id; a
  claim's message list gains the imported messages that name it), removals (of messages, and of
  claims: a released claim is journalled under its own id).
  KEYS: the eleven keys of the queue (lib.lua).
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
  redis.call('UNLINK', k.m, k.a, k.r, k.d, k.i, k.e, k.c, k.x)
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
for _ = 1, nrec do
  local id, created_at, ttl, expires, visible, cc, claim, cexp, client, body =
    ARGV[p], tonumber(ARGV[p + 1]), tonumber(ARGV[p + 2]), tonumber(ARGV[p + 3]), tonumber(ARGV[p + 4]),
    tonumber(ARGV[p + 5]), ARGV[p + 6], tonumber(ARGV[p + 7]), ARGV[p + 8], ARGV[p + 9]
  p = p + 10
  if claim == '' then cexp = 0 end
  local seq
  local raw = redis.call('HGET', k.m, id)
  if raw then
    local old = decode(raw)
    seq = old[R_SEQ]
    body = old[R_BODY]
    redis.call('ZREM', k.r, id)
    redis.call('ZREM', k.d, id)
    redis.call('ZREM', k.i, id)
  else
    seq = redis.call('HINCRBY', k.q, 'seq', 1)
    redis.call('ZADD', k.a, seq, id)
  end
  redis.call('HSET', k.m, id, encode({ seq, created_at, ttl, expires, visible, cc, claim, cexp, client, body }))
  redis.call('ZADD', k.e, expires, id)
  -- Indexed as a post, a claim or a delay would have left it (lib.lua: exactly one of r / d / i).
  if claim ~= '' and cexp > now then
    redis.call('ZADD', k.i, cexp, id)
    local ids = byClaim[claim]
    if not ids then
      ids = {}
      byClaim[claim] = ids
    end
    ids[#ids + 1] = id
  elseif visible > now then
    redis.call('ZADD', k.d, visible, id)
  else
    redis.call('ZADD', k.r, seq, id)
  end
end

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
