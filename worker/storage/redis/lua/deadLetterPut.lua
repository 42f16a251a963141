--[[
  deadLetterPut: the second step of dead-lettering on a Redis Cluster pool (claims.ts): puts
  messages taken from a queue's outbox (claimMessages.lua, ARGV[3] = '2') at the tail of its
  dead-letter queue, unclaimed and visible now, each under its own id — once: an id this queue
  received in the last `retention` ms (its `n` set), or holds, is skipped, so a step repeated after
  a crash, or by two workers at once, never adds a message twice. A step older than `guard` ms
  (a worker stalled between reading the outbox and this call) does nothing: the outbox still
  holds the messages and a later step moves them; `retention` is well above `guard`, so the
  record of a message put here outlives every step that could carry it again.
  KEYS: [1] the dead-letter queue's record key (lib.lua, queue_keys); [2] its received set (ZSET id -> ms).
  ARGV: [1] now (ms)  [2] when the outbox was read (ms)  [3] guard (ms)  [4] retention (ms)
        then per message: id, its outbox JSON (claimMessages.lua: q, t, c, l, x, n, k, b).
  Returns: { 'OK', created (1 if this created the queue), messages put }; { 'STALE' } past the
           guard; { 'BUSY' } while a large post is staged into the queue (its rollback would take
           a message put meanwhile); MOVED (lib.lua, fence_check) when fenced.
  Errors: none raised.
]]
local k = queue_keys(0)
local n = KEYS[NKEYS + 1]
local now = tonumber(ARGV[1])
local moved, journalled = fence_check(k)
if moved then return moved end
if now - tonumber(ARGV[2]) > tonumber(ARGV[3]) then return { 'STALE' } end
if redis.call('HEXISTS', k.q, 'stage') == 1 then return { 'BUSY' } end
redis.call('ZREMRANGEBYSCORE', n, '-inf', now - tonumber(ARGV[4]))
local created = ensure_queue(k.q, now)
local put, jids = 0, {}
for p = 5, #ARGV, 2 do
  local id = ARGV[p]
  if not redis.call('ZSCORE', n, id) and redis.call('HEXISTS', k.m, id) == 0 then
    local m = cjson.decode(ARGV[p + 1])
    local ttl, expires = m.l, m.x
    if m.t ~= '' then ttl, expires = tonumber(m.t), now + tonumber(m.t) * 1000 end
    local seq = redis.call('HINCRBY', k.q, 'seq', 1)
    redis.call('HSET', k.m, id, encode({ seq, m.c, ttl, expires, now, m.n, '', 0, m.k, m.b }))
    redis.call('ZADD', k.a, seq, id)
    redis.call('ZADD', k.r, seq, id)
    uncover(k, { expires, id }, { seq, id })
    redis.call('ZADD', n, now, id)
    put = put + 1
    if journalled then jids[#jids + 1] = id end
  end
end
if journalled then journal(k, jids) end
return { 'OK', created, put }
