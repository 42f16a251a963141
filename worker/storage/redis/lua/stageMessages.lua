--[[
  stageMessages: one chunk of a large post (more than POST_CHUNK messages or POST_CHUNK_BYTES
  of bodies), so that no call does unbounded work while the post stays all or nothing.
  'begin' takes the queue's stage (lib.lua) and writes the first chunk; 'add' writes a further
  chunk; 'commit' writes the last chunk, releases the stage — every message of the post becomes
  visible at once — and writes the idempotency record. Staged messages are invisible to
  readers (they stop below stagelo) and other posts wait. A stage abandoned (its poster died or
  stalled past stagedl) is rolled back in bounded steps by the next post or the collector.
  KEYS: [1] the queue's record key (lib.lua, queue_keys); [2] the idempotency record key, when the post has one.
  ARGV: [1] now (ms)  [2] op: 'begin' | 'add' | 'commit'  [3] the post's token
        [4] clientId  [5] defaultTtl (s)  [6] postBytes  [7] queuePolicy ('1'|'0')
        [8] idempotency window (ms)  [9] commit: every id of the post, comma-separated
        [10] maxMessages (the queue's quota, PostOptions.maxMessages; 0 = none)
        [11] the post's message count (all chunks)
        [12] count, then the chunk's messages as lib.lua `append_messages` reads them (as
        postMessages.lua: ttl of all, delay of all, every id, then per message)
  Returns: MOVED (lib.lua, fence_check) when fenced; { 'OK', created (1 if begin created the queue) }; { 'BUSY' } (begin: another post
           holds the queue; nothing done); { 'DUP', ids comma-separated } (begin: the
           idempotency record exists; nothing done); { 'TOOBIG', _max_messages_post_size as
           stored, created } (begin: nothing stored, the queue stays created); { 'FULL',
           maxMessages, created } (begin: the whole post would put the queue over its quota;
           nothing stored, the queue stays created); { 'LOST' } (add/commit:
           the stage is gone — rolled back, purged or deleted; the post must start over).
  Errors: none.
]]
local k = queue_keys(0)
local now = tonumber(ARGV[1])
local op, token = ARGV[2], ARGV[3]
local client, defttl, bytes, limits = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7] == '1'
local count = tonumber(ARGV[12])
-- Every chunk is fenced: under `moved` no chunk lands, and the stage left behind is rolled back
-- by readForMigration (the post can never commit there again).
local moved, _ = fence_check(k)
if moved then return moved end
local created = 0
if op == 'begin' then
  if not queue_free(k, now, token) then return { 'BUSY' } end
  if KEYS[NKEYS + 1] then
    local prev = redis.call('GET', KEYS[NKEYS + 1])
    if prev then return { 'DUP', prev } end
  end
  created = ensure_queue(k.q, now)
  local maxpost, maxraw = post_settings(post_fields(k), defttl, limits)
  if limits and maxpost and bytes > maxpost then return { 'TOOBIG', maxraw, created } end
  -- The whole post is counted when it begins; the stage keeps other posts out until it ends.
  local maxmsgs = tonumber(ARGV[10])
  if maxmsgs > 0 and live_count(k, now) + tonumber(ARGV[11]) > maxmsgs then
    return { 'FULL', maxmsgs, created }
  end
  local seq = tonumber(redis.call('HGET', k.q, 'seq'))
  redis.call('HSET', k.q, 'stage', token, 'stagelo', num(seq + 1), 'stagen', 0)
elseif redis.call('HGET', k.q, 'stage') ~= token then
  return { 'LOST' }
end
local _, _, ttl0, honour, delay0 = post_settings(post_fields(k), defttl, limits)
-- Staged messages are appended past the ready cursor when the queue has one, and covered by
-- expiry marks when it has them (lib.lua).
local qm = redis.call('HMGET', k.q, 'rc', 'el', 'emax', 'em')
local acc = new_acc(qm[1] ~= false, { qm[2], qm[3], qm[4] })
append_messages(acc, now, client, ttl0, honour, delay0, count, 13, {}, redis.call('HINCRBY', k.q, 'seq', count) - count)
write_acc(k, acc)
if op == 'commit' then
  redis.call('HDEL', k.q, 'stage', 'stagelo', 'stagedl', 'stagen')
  if KEYS[NKEYS + 1] then redis.call('SET', KEYS[NKEYS + 1], ARGV[9], 'PX', ARGV[8]) end
else
  redis.call('HSET', k.q, 'stagedl', now + STAGE_MS)
  redis.call('HINCRBY', k.q, 'stagen', count)
end
return { 'OK', created }
