--[[
  lib.lua: helpers for the scripts of the Redis driver. Each operation's script is loaded with
  the top-level definitions of this file it uses in front of it (scripts.ts, `libFor`), so every
  definition here starts at the margin with `local`. Defines no script of its own.

  A queue script takes one key of each queue it touches, the queue record's (q); the queue's
  other twelve keys are the same name with another letter (keys.ts), built here (queue_keys):
    q  HASH  queue record: meta (JSON text), seq, created, rc (the ready cursor, a seq),
             the expiry marks' fields (el, emax, em, eb, ec: "Expiry marks" below),
             and the reserved metadata the scripts read, pre-parsed by the driver:
             maxpost, ttl, delay, dlq, dlqmax, dlqttl
    m  HASH  message id -> record (cmsgpack array, see R_* below)
    a  ZSET  every message, score = seq (FIFO order; markers are seqs)
    r  ZSET  ready: visible and not claimed, score = seq (may hold expired ids until read),
             but for the fresh messages past the ready cursor
    d  ZSET  delayed: score = visible-at (ms)
    i  ZSET  in flight: claimed, score = claim expiry (ms)
    e  ZSET  the messages the expiry marks do not cover, score = expiry (ms)
    c  HASH  claim id -> claim record (cmsgpack array, see C_* below)
    x  ZSET  claim id, score = claim expiry (ms)
    f  HASH  migration fence (absent: none): state, token, to, jv, reset (see fence_check)
    j  ZSET  migration journal: message id, score = version
    s  ZSET  the same members as e, score = seq
    t  ZSET  expiry marks: member = a seq (text), score = an expiry (ms)
  A message is in `a` for its whole life, either in `e` (and `s`) or covered by the expiry marks,
  and in exactly one of r / d / i, except that a message whose delay or claim ran out stays in
  d / i until `promote` moves it to r, and that a fresh message past the ready cursor is in none
  of the three (see "The ready cursor" below).

  Invariant: a claimed message never expires before its claim (claims and renewals extend it),
  so ZCOUNT i (now +inf counts exactly the actively claimed, unexpired messages.

  Numbers: never concatenate a Lua number into a string (tostring keeps 14 digits); use num(),
  or int() for numbers that are usually whole (seqs, ms timestamps, TTLs).
  Scores handed to ZADD are strings built once (int()), not Lua numbers: Redis turns a number
  argument into text with snprintf('%.17g'), which glibc does with multi-precision arithmetic
  (~6 % of Redis's CPU on posts in a `perf` profile), once per use; a string is built once and
  reused (a message's seq goes to both `a` and `r`, one expiry serves a request's messages).
  The same holds for every number handed to redis.call, range bounds and LIMIT counts included:
  Redis writes it with '%.17g' (~2.4k instructions in glibc, even for a 0), int() with '%d', and a
  constant is best written as text ('0').
]]

local R_SEQ, R_CREATED, R_TTL, R_EXPIRES, R_VISIBLE, R_CC, R_CLAIM, R_CLAIMEXP, R_CLIENT, R_BODY = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
local C_TTL, C_EXPIRES, C_UPDATED, C_IDS = 1, 2, 3, 4

--- Largest number of elements handed to one variadic command (Lua's C stack holds ~8000).
local CHUNK = 1000
--- How many due delayed / expired in-flight ids one promote step moves (bounded work per call:
--- a step costs ~1 ms of Redis time at 256).
local PROMOTE_STEP = 256
--- listMessages: entries read per round trip inside the script, and the bytes of skipped
--- (filtered-out) records after which the scan stops early, whatever the entry budget.
local LIST_BATCH = 32
local LIST_SKIP_BYTES = 1048576
--- claimMessages / popMessages: ready-index entries one script call examines at most (expired
--- ones it meets are removed and count too), and promote steps it runs at most. A claim cut
--- short by the budget takes fewer messages; the next call carries on.
local CLAIM_SCAN = 512
local CLAIM_PROMOTES = 2
--- stats: entries examined from each end of the queue for the oldest and newest messages.
local STATS_SCAN = 256
--- The longest a listener may wait (listenQueue.lua): the longest long-poll `wait` a proxy can
--- be configured for (3,600 s) and a minute more. A queue going live (fenceQueue.lua) announces
--- its posts for that long.
local LISTEN_MAX_MS = 3660000

local function num(x)
  return string.format('%.17g', x)
end

local floor = math.floor

--- x as text, exactly: whole numbers (below 2^63) with '%d' — an integer conversion, far cheaper
--- than num()'s '%.17g' — and any other number as num() writes it. Same text as num() for whole
--- numbers below 1e17.
local function int(x)
  if x == floor(x) and x > -1e17 and x < 1e17 then return string.format('%d', x) end
  return num(x)
end

--- int(x), remembered in `cache` under `key` (within one call x depends on key alone): one
--- conversion per distinct key. A NaN key is not remembered (no table can hold it).
local function int_by(cache, key, x)
  local s = cache[key]
  if not s then
    s = int(x)
    if key == key then cache[key] = s end
  end
  return s
end

--- Marks the listeners' key `l` (keys.ts) until now + ms unless it already holds a later time;
--- the key outlives the mark by a minute, then expires.
local function mark_listening(l, now, ms)
  local upto = now + ms
  if upto > (tonumber(redis.call('GET', l)) or 0) then redis.call('SET', l, int(upto), 'PX', math.floor(ms) + 60000) end
end

--- How many KEYS one queue takes: its record's key, from which queue_keys builds the others.
local NKEYS = 1

--- The keys of the queue whose record key is KEYS[base + 1]: the same name with the kind's
--- letter in place of `q` (keys.ts: `missive:<letter>:{<tag>}`, one hash tag, so one Cluster slot;
--- Redis allows a script keys it was not given when they share the slot of those it was).
--- Built here, not passed: each key Redis turns into an element of KEYS cost it ~1.9k
--- instructions (parsing the argument, a string object, a Lua string, the array's growth), a
--- key built here ~0.8k (perf/redis-instructions.ts).
local function queue_keys(base)
  local q = KEYS[base + 1]
  local at = string.find(q, ':{', 1, true)
  local h, t = string.sub(q, 1, at - 2), string.sub(q, at)
  return {
    q = q, m = h .. 'm' .. t, a = h .. 'a' .. t, r = h .. 'r' .. t, d = h .. 'd' .. t,
    i = h .. 'i' .. t, e = h .. 'e' .. t, c = h .. 'c' .. t, x = h .. 'x' .. t, f = h .. 'f' .. t,
    j = h .. 'j' .. t, s = h .. 's' .. t, t = h .. 't' .. t,
  }
end

--[[
  Migration fences (shared/storage/migration.ts). Every client script calls fence_check first:
  one EXISTS of a key that does not exist for a queue that is not moving. Under `moved` or
  `importing` the script returns the MOVED reply having done nothing (the driver throws
  QueueMoved); under `journal` it runs and journals, with journal(), every existing message whose
  stored state it changes, atomically with the change.
]]

--- nil, false: no fence; nil, true: journal; a MOVED reply { 'MOVED', state, token, to }: refused.
--- The common case, no fence, is one EXISTS: an HMGET of the missing key's three fields cost
--- Redis 2.6 times as much (8.4k instructions against 3.2k, perf/redis-instructions.ts).
local function fence_check(k)
  if redis.call('EXISTS', k.f) == 0 then return nil, false end
  local f = redis.call('HMGET', k.f, 'state', 'token', 'to')
  if not f[1] then return nil, false end
  if f[1] == 'journal' then return nil, true end
  return { 'MOVED', f[1], f[2], f[3] }, false
end


local decode = cmsgpack.unpack
local encode = cmsgpack.pack
local unpack_limit = cmsgpack.unpack_limit

--- A message record (R_* above) from its stored text. A record is a msgpack array of ten fields,
--- so its header is one byte (a fixarray): its fields are read past that byte as values, into a
--- table built at its size, where `decode` would grow a table field by field (measured in a loop
--- inside redis-server 7.0.15: 520 ns a record instead of 790).
local function decode_record(raw)
  return { select(2, unpack_limit(raw, 10, 1)) }
end

local char = string.char
local sub = string.sub
local format = string.format

--- The fields a post's messages share in their records, R_CREATED to R_CLIENT, encoded: a new
--- message's record is then its seq and body around them (new_record).
local function record_middle(now, ttl, expires, visible, client)
  return encode(now, ttl, expires, visible, 0, '', 0, client)
end

--- A new message's record: byte for byte encode({ seq, ...the middle's fields..., body }), built
--- from the encoded parts (a post's messages share `middle`: record_middle) instead of packing a
--- table of ten per message (measured in a loop inside redis-server 7.0.15: 630 ns a record
--- instead of 1,000). The body's header is msgpack's str header as cmsgpack writes it.
local function new_record(seq, middle, body)
  local n = #body
  local hdr
  if n < 32 then
    hdr = char(160 + n)
  elseif n < 256 then
    hdr = char(217, n)
  elseif n < 65536 then
    hdr = char(218, floor(n / 256), n % 256)
  else
    hdr = char(219, floor(n / 16777216), floor(n / 65536) % 256, floor(n / 256) % 256, n % 256)
  end
  return '\154' .. encode(seq) .. middle .. hdr .. body
end

--- Calls `cmd key ...` with the elements of `list`, `step` at a time (step even for pairs).
local function call_chunked(cmd, key, list, step)
  step = step or CHUNK
  local n = #list
  local i = 1
  while i <= n do
    local j = math.min(i + step - 1, n)
    redis.call(cmd, key, unpack(list, i, j))
    i = j + 1
  end
end

--- Journals `ids` (under a journal fence): each gets a new, higher version and moves to the end.
local function journal(k, ids)
  local n = #ids
  if n == 0 then return end
  local v = redis.call('HINCRBY', k.f, 'jv', n) - n
  local pairs_ = {}
  for i = 1, n do
    pairs_[#pairs_ + 1] = v + i
    pairs_[#pairs_ + 1] = ids[i]
  end
  call_chunked('ZADD', k.j, pairs_, 2000)
end

--- ZMSCORE in chunks: a table of scores (false where missing), aligned with `ids`.
local function zmscore(key, ids)
  local out = {}
  local n = #ids
  local i = 1
  while i <= n do
    local j = math.min(i + CHUNK - 1, n)
    local part = redis.call('ZMSCORE', key, unpack(ids, i, j))
    for k = 1, #part do out[#out + 1] = part[k] end
    i = j + 1
  end
  return out
end

--- HMGET in chunks.
local function hmget(key, ids)
  local out = {}
  local n = #ids
  local i = 1
  while i <= n do
    local j = math.min(i + CHUNK - 1, n)
    local part = redis.call('HMGET', key, unpack(ids, i, j))
    for k = 1, #part do out[#out + 1] = part[k] end
    i = j + 1
  end
  return out
end

--- Removes messages known to be held by an active claim (their record said so, at `now`, in this
--- call): such a message is in i, not in r or d, so those two are not touched (a ZREM of absent
--- members still costs a lookup each in the big ready index). Were it in r after all (promoted
--- early by a worker whose clock runs ahead), the entry would point at no record, and the next
--- claim reaching it removes it (claims drop ready entries without a record).
local function remove_claimed(k, ids)
  if #ids == 0 then return end
  call_chunked('HDEL', k.m, ids)
  call_chunked('ZREM', k.a, ids)
  call_chunked('ZREM', k.i, ids)
  -- `s` holds the members of `e` (lib.lua, "Expiry marks"): a queue whose messages the marks
  -- all cover has neither, and one EXISTS spares two removals of every id.
  if redis.call('EXISTS', k.e) == 1 then
    call_chunked('ZREM', k.e, ids)
    call_chunked('ZREM', k.s, ids)
  end
  -- An emptied queue covers nothing: its expiry marks go, and the next post starts them afresh.
  if redis.call('EXISTS', k.a) == 0 then
    redis.call('UNLINK', k.t)
    redis.call('HDEL', k.q, 'emax', 'em', 'eb', 'ec')
  end
end

--- Removes messages from the queue entirely: record and every index.
local function remove_messages(k, ids)
  if #ids == 0 then return end
  remove_claimed(k, ids)
  call_chunked('ZREM', k.r, ids)
  call_chunked('ZREM', k.d, ids)
end

--- Moves ids (from `from`) back into r, scored by their seq; ids no longer in `a` are dropped.
local function to_ready(k, from, ids)
  if #ids == 0 then return end
  local seqs = zmscore(k.a, ids)
  local pairs_ = {}
  for n = 1, #ids do
    if seqs[n] then
      pairs_[#pairs_ + 1] = seqs[n]
      pairs_[#pairs_ + 1] = ids[n]
    end
  end
  if #pairs_ > 0 then call_chunked('ZADD', k.r, pairs_, CHUNK * 2) end
  call_chunked('ZREM', from, ids)
end

--- Moves up to `step` due delayed ids and `step` ids whose claim ran out into r. Returns how many.
local function promote(k, now, step)
  -- Numbers go to redis.call as text made here, not as numbers Redis writes with '%.17g' (above).
  local nows, steps = int(now), int(step)
  local due = redis.call('ZRANGEBYSCORE', k.d, '-inf', nows, 'LIMIT', '0', steps)
  to_ready(k, k.d, due)
  local back = redis.call('ZRANGEBYSCORE', k.i, '-inf', nows, 'LIMIT', '0', steps)
  to_ready(k, k.i, back)
  return #due + #back
end

--[[
  The ready cursor. Posting a message to r costs a sorted-set insert into the queue's largest
  index, and claiming it a removal; most messages are claimed in the order they were posted, so
  the queue record's `rc` (a seq, as text) stands for them instead. A message past rc (seq > rc)
  that is `fresh` — never claimed, and posted without delay: its record has claim count 0 and
  visible = created — is ready without being in r. A claim takes the oldest of r's entries and
  of a's entries past rc, in seq order (next_ready), and moves rc past the entries of a it
  examined: the fresh ones it takes or finds expired; the others (delayed, claimed) stay where
  their own index has them, and reach r by `promote` as before. Everything that reaches r by
  any other way (promotions, claims released or run out, dead-lettering, imports) is written to
  r as before, even past rc: next_ready meets such a message in both indexes with the same
  score and takes it once.
  A queue record without rc (written before the cursor existed) has every ready message in r:
  claims read r alone, and its next post sets rc to the queue's last seq.
]]

--- Whether a message past the ready cursor is ready by being there (see above).
local function fresh(rec)
  return rec[R_CC] == 0 and rec[R_VISIBLE] == rec[R_CREATED]
end

--- The oldest `n` ready candidates up to `upto` (a ZRANGEBYSCORE bound): r's entries and, when
--- the queue has a cursor `rc`, a's entries past it, merged in seq order. Removes the ones taken
--- from r. Returns their ids, a set of the ids that came from past the cursor (to be taken only
--- if `fresh`), and the cursor moved past those.
local function next_ready(k, rc, upto, n)
  local ns = int(n)
  local rs = redis.call('ZRANGEBYSCORE', k.r, '-inf', upto, 'WITHSCORES', 'LIMIT', '0', ns)
  if rc and #rs == 0 then
    -- Nothing in r (a queue whose consumers keep up): a's entries are the candidates as they
    -- come, with no merge to order them by, so only the last one's score is read (the new
    -- cursor), not one per entry: Redis writes each score as text with '%.17g' and Lua reads it
    -- back with strtod, ~0.45 µs per entry (a 10-entry range: 8.4 µs with scores, 5.1 without).
    local as = redis.call('ZRANGEBYSCORE', k.a, '(' .. rc, upto, 'LIMIT', '0', ns)
    local past = {}
    for m = 1, #as do past[as[m]] = true end
    if #as > 0 then rc = redis.call('ZSCORE', k.a, as[#as]) end
    return as, past, rc
  end
  local as = {}
  if rc then as = redis.call('ZRANGEBYSCORE', k.a, '(' .. rc, upto, 'WITHSCORES', 'LIMIT', '0', ns) end
  local ids, past, from_r = {}, {}, {}
  local i, j, nr, na, count = 1, 1, #rs, #as, 0
  while count < n and (i < nr or j < na) do
    local rsc = i < nr and tonumber(rs[i + 1]) or nil
    local asc = j < na and tonumber(as[j + 1]) or nil
    count = count + 1
    if asc == nil or (rsc ~= nil and rsc <= asc) then
      ids[count] = rs[i]
      from_r[#from_r + 1] = rs[i]
      -- A seq is one message: in both indexes, it is taken once, from r.
      if rsc == asc then
        rc = as[j + 1]
        j = j + 2
      end
      i = i + 2
    else
      ids[count] = as[j]
      past[as[j]] = true
      rc = as[j + 1]
      j = j + 2
    end
  end
  if #from_r > 0 then redis.call('ZREM', k.r, unpack(from_r)) end
  return ids, past, rc
end

--- The seq a new queue record starts from. Seeding it from the clock keeps markers of a deleted
--- incarnation of the queue from naming messages of the next one.
local function first_seq(now)
  return now * 1000
end

--- The fields of a new queue record (name, value, ...): its seq at `seq`, its ready cursor at
--- `rc` (the seq before its first message), its metadata `meta` (JSON text; '{}' when nil: lazy
--- creation), and `el`: it has expiry marks ("Expiry marks" below).
local function new_queue_fields(now, seq, rc, meta)
  return { 'meta', meta or '{}', 'created', int(now), 'seq', int(seq), 'rc', int(rc), 'el', '1' }
end

--- Writes a new queue record (new_queue_fields).
local function write_new_queue(q, now, seq, rc, meta)
  redis.call('HSET', q, unpack(new_queue_fields(now, seq, rc, meta)))
end

--- Whether the queue exists, given its record's `created` as read (`created`: text or false).
--- Every record written since `created` existed has it, with `meta`, and nothing deletes either;
--- an older record has `meta` alone. Reading `created` rather than `meta` keeps a claim's or a
--- listing's cost from growing with the queue's metadata (up to 64 KiB of JSON, which Lua copies
--- and hashes byte by byte).
local function queue_exists(k, created)
  return created ~= false or redis.call('HEXISTS', k.q, 'meta') == 1
end

--- Creates the queue record if missing (lazy creation). Returns 1 when it created it.
local function ensure_queue(q, now)
  if redis.call('EXISTS', q) == 1 then return 0 end
  write_new_queue(q, now, first_seq(now), first_seq(now))
  return 1
end

--- Appends a message as readers see it to `out`, flat, six fields: id, body, ttl (`ttl`, as
--- text), created, claim id (`claim`, '' for none), claim count (context.ts `readViews`).
--- Flat, not a table per message: Redis turns every table of a reply into an array with two
--- lookups of its own (is it an error or a status reply?), ~0.5 µs per message (a reply of ten
--- messages: 18.3 µs nested, 9.8 flat). Nothing more than a reader is shown: every field is a
--- reply element Redis writes and ioredis parses (the seq was one, and no reader used it).
local function put_view(out, id, rec, ttl, claim)
  local n = #out
  out[n + 1] = id
  out[n + 2] = rec[R_BODY]
  out[n + 3] = ttl
  out[n + 4] = rec[R_CREATED]
  out[n + 5] = claim
  out[n + 6] = rec[R_CC]
end

--- put_view for a reader: the claim shown is the message's active claim, if any.
local function add_view(out, id, rec, now)
  local claim = ''
  if rec[R_CLAIM] ~= '' and rec[R_CLAIMEXP] > now then claim = rec[R_CLAIM] end
  put_view(out, id, rec, int(rec[R_TTL]), claim)
end

--[[
  Expiry marks. Most queues receive messages of one TTL, in order, so a message's expiry grows
  with its seq. Such a message is not written to `e` (an index entry per message, ~15 % of a
  post's Redis time and of the pool's memory): it is covered by the marks `t` instead, one per
  run of consecutive covered messages sharing an expiry (member: the run's last seq, score: that
  expiry), so usually one per post call. A message whose expiry is below the last mark's (the
  queue record's `emax`, its member `em`), and every message whose expiry changes after its post
  (claims and renewals extending it, imports replacing it) or that arrives out of seq order
  (dead-lettering, returns), is written to `e` (score: expiry) and `s` (score: seq), as before.
  Covered: in `a`, not in `e`. Marks rise in both member and score, and every covered message
  expires exactly at the score of the first mark at or above its seq. So, at `now`, with B the
  member of the last mark whose score is <= now (`boundary`), a covered message is expired iff
  its seq <= B, and the unexpired messages number exactly
      ZCOUNT a (B +inf  -  ZCOUNT s (B +inf  +  ZCOUNT e (now +inf      (`live_count`)
  A mark may go once nothing covered is left at or below it (`collect`); the last such member is
  kept as the record's `eb`, which stands for B when no remaining mark is due. `ec` is the seq
  up to which the collector has removed the expired covered messages.
  A queue record from before the marks (no `el`) has every message in `e` (and none in `s`): its
  posts keep writing every message to `e` (and `s`) and it is counted by `e` alone, until a post
  finds it empty (postMessages.lua) or it is purged; then it takes the marks (`el` = '1').
]]

--- B: the member of the last mark due at `nows` (text), else the record's `eb`; false if neither.
local function boundary(k, nows)
  local m = redis.call('ZREVRANGEBYSCORE', k.t, nows, '-inf', 'LIMIT', '0', '1')
  if m[1] then return m[1] end
  return redis.call('HGET', k.q, 'eb')
end

--- The queue's unexpired messages at `now` (staged ones included: callers subtract `stagen`), and
--- B (`boundary`; false for a queue without marks), for callers that read expiry further.
local function live_count(k, now)
  local nows = int(now)
  local n = redis.call('ZCOUNT', k.e, '(' .. nows, '+inf')
  if not redis.call('HGET', k.q, 'el') then return n, false end
  local b = boundary(k, nows)
  local lo = b and '(' .. b or '-inf'
  return n + redis.call('ZCOUNT', k.a, lo, '+inf') - redis.call('ZCOUNT', k.s, lo, '+inf'), b
end

--- Whether each of `ids` is unexpired at `now`, by `e` or by the marks (B = `b`): a table aligned
--- with `ids`, false for expired or missing messages.
local function unexpired(k, ids, now, b)
  local out = {}
  if #ids == 0 then return out end
  local exps = zmscore(k.e, ids)
  local seqs = zmscore(k.a, ids)
  local bn = b and tonumber(b)
  for n = 1, #ids do
    if exps[n] then
      out[n] = tonumber(exps[n]) > now
    else
      out[n] = seqs[n] ~= false and (not bn or tonumber(seqs[n]) > bn)
    end
  end
  return out
end

--- Writes `e` and `s` entries for messages whose expiry the marks do not (or no longer) cover:
--- `exps` holds expiry, id pairs and `seqs` seq, id pairs, in step.
local function uncover(k, exps, seqs)
  if #exps == 0 then return end
  call_chunked('ZADD', k.e, exps, CHUNK * 2)
  call_chunked('ZADD', k.s, seqs, CHUNK * 2)
end

--- One bounded step of collecting covered messages past their expiry (up to `step` entries of `a`
--- examined) and of dropping marks that cover nothing any more (up to `step`). Returns how many
--- messages were removed and how many marks dropped.
local function collect_covered(k, now, step)
  local qf = redis.call('HMGET', k.q, 'ec', 'el')
  if not qf[2] then return 0, 0 end
  local ec = qf[1]
  local b = boundary(k, int(now))
  local removed = 0
  if b and (not ec or tonumber(ec) < tonumber(b)) then
    local got = redis.call('ZRANGEBYSCORE', k.a, ec and '(' .. ec or '-inf', b, 'WITHSCORES', 'LIMIT', '0', step)
    local ids = {}
    for n = 1, #got, 2 do ids[#ids + 1] = got[n] end
    local exps = zmscore(k.e, ids)
    local dead = {}
    for n = 1, #ids do
      if not exps[n] then dead[#dead + 1] = ids[n] end
    end
    -- Past B when the range ran out, else the last seq examined; written before the removal,
    -- which clears it with the other marks' fields when it empties the queue.
    if #ids < step then ec = b else ec = got[#got] end
    redis.call('HSET', k.q, 'ec', ec)
    remove_messages(k, dead)
    removed = #dead
  end
  -- Marks go from the front while nothing covered is left at or below them: either due and
  -- collected up to (`ec`), or below the queue's oldest message.
  -- Read 16 at a time: a queue usually has a few marks to drop, or none.
  local head = redis.call('ZRANGE', k.a, 0, 0, 'WITHSCORES')
  local oldest = head[2] and tonumber(head[2]) or math.huge
  local ecn = ec and tonumber(ec) or -1
  local drop, last, more = 0, nil, true
  while more and drop < step do
    local marks = redis.call('ZRANGE', k.t, drop, drop + 15, 'WITHSCORES')
    more = #marks == 32
    for n = 1, #marks, 2 do
      local seq = tonumber(marks[n])
      if drop < step and (seq < oldest or (tonumber(marks[n + 1]) <= now and seq <= ecn)) then
        drop = drop + 1
        last = marks[n]
      else
        more = false
        break
      end
    end
  end
  if drop > 0 then
    redis.call('ZREMRANGEBYRANK', k.t, 0, drop - 1)
    redis.call('HSET', k.q, 'eb', last)
    -- No mark left: the next post starts the marks afresh, whatever expiry it brings.
    if redis.call('EXISTS', k.t) == 0 then redis.call('HDEL', k.q, 'emax', 'em') end
  end
  return removed, drop
end

--- Deletes up to `step` expired messages of `e`, a step of the covered ones (`collect_covered`)
--- and up to `step` expired claims. Returns the messages and claims deleted, and the expiry marks
--- dropped.
local function collect(k, now, step)
  local dead = redis.call('ZRANGEBYSCORE', k.e, '-inf', now, 'LIMIT', '0', step)
  remove_messages(k, dead)
  local covered, marks = collect_covered(k, now, step)
  local gone = redis.call('ZRANGEBYSCORE', k.x, '-inf', now, 'LIMIT', '0', step)
  if #gone > 0 then
    call_chunked('HDEL', k.c, gone)
    call_chunked('ZREM', k.x, gone)
  end
  return #dead + covered, #gone, marks
end

--[[
  Large posts (stageMessages.lua): while a post is written in chunks, the queue record holds
  stage (the post's token), stagelo (its first seq), stagedl (ms: when an abandoned stage may be
  rolled back) and stagen (messages staged so far). The staged messages are the queue's highest
  seqs; readers stop below stagelo, other posts wait (BUSY), so the post appears all at once,
  in FIFO place, when its last chunk commits.
]]
local STAGE_MS = 5000

--- The queue record's `stagelo` (the first staged seq, or false) as a ZRANGEBYSCORE upper bound:
--- '(lo', or '+inf' when nothing is staged.
local function upto_of(stagelo)
  if stagelo then return '(' .. stagelo end
  return '+inf'
end

--- upto_of for the queue record `q`, read here.
local function visible_max(q)
  return upto_of(redis.call('HGET', q, 'stagelo'))
end

--- One bounded step of rolling back an abandoned stage. Returns true once nothing is staged.
local function unstage(k, step)
  local lo = redis.call('HGET', k.q, 'stagelo')
  if not lo then return true end
  local ids = redis.call('ZRANGEBYSCORE', k.a, lo, '+inf', 'LIMIT', '0', step)
  remove_messages(k, ids)
  if #ids < step then
    redis.call('HDEL', k.q, 'stage', 'stagelo', 'stagedl', 'stagen')
    return true
  end
  return false
end

--- Whether a post other than `token` may write now: false while a live stage holds the queue;
--- an abandoned one (past stagedl) is rolled back a step at a time, and is in the way until gone.
local function stage_free(k, now, token, stage, stagedl)
  if not stage or stage == token then return true end
  if tonumber(stagedl) > now then return false end
  return unstage(k, PROMOTE_STEP)
end

local function queue_free(k, now, token)
  local st = redis.call('HMGET', k.q, 'stage', 'stagedl')
  return stage_free(k, now, token, st[1], st[2])
end

--- Adds message `id` (seq `s`, expiry `es`, both as text) to the `e` and `s` entries `acc`
--- gathers (write_expiries).
local function add_uncovered(acc, id, s, es)
  local exp, sq = acc.exp, acc.sq
  local n = #exp
  exp[n + 1] = es
  exp[n + 2] = id
  sq[n + 1] = s
  sq[n + 2] = id
end

--- Files one new message's expiry (`expires`, as text `es`) under the marks or, when it is below
--- the last mark's (or the queue has no marks: `acc.covering` false), in `e` and `s` (seq `s`).
--- Returns `expires` when the message now ends the last mark's run: the next message of that
--- expiry only moves the run's end to its own seq, `acc.mk[#acc.mk] = s` (the first branch
--- below), which a caller placing many messages does without the call.
local function place_expiry(acc, id, s, expires, es)
  if acc.covering and expires >= acc.emax then
    local mk = acc.mk
    local nm = #mk
    if expires == acc.emax and nm > 0 then
      mk[nm] = s
    else
      -- The run of the queue's last mark goes on: that mark moves up to this run's end.
      if expires == acc.emax then acc.drop = acc.em end
      mk[nm + 1] = es
      mk[nm + 2] = s
      acc.emax = expires
    end
    return expires
  end
  add_uncovered(acc, id, s, es)
  return nil
end

--- Writes the expiry entries place_expiry gathered in `acc`: e / s, and the marks, with the
--- record's emax / em written together with the fields `qset` (name, value, ...) the caller
--- has for it: one HSET of the queue record.
local function write_expiries(k, acc, qset)
  uncover(k, acc.exp, acc.sq)
  local mk = acc.mk
  if #mk > 0 then
    if acc.drop then redis.call('ZREM', k.t, acc.drop) end
    call_chunked('ZADD', k.t, mk, CHUNK * 2)
    qset[#qset + 1] = 'emax'
    qset[#qset + 1] = mk[#mk - 1]
    qset[#qset + 1] = 'em'
    qset[#qset + 1] = mk[#mk]
  end
  if #qset > 0 then redis.call('HSET', k.q, unpack(qset)) end
end

--- Appends `count` messages whose ARGV start at `p` to `acc`, with the seqs after `seq` (the
--- queue's last seq: the caller reserves them); `ids` gets their ids. The arguments (messages.ts,
--- `postArgs`): the TTL of every message, the delay of every message, their ids, then per
--- message its TTL (only when the first is '*'), its delay (only when the second is '*') and its
--- body. A TTL or delay given for all is '' when none was given (the default applies), else the
--- number: a request's messages mostly share both, and each argument costs Redis work before
--- the script reads it (parsed, a string object, then a Lua string). The ids are one argument
--- for the same reason: all of one length (newId), cut apart with string.sub.
--- Returns the last seq used.
local function append_messages(acc, now, client, ttl0, honour, delay0, count, p, ids, seq)
  local recs, all, ready, delayed, expstr = acc.recs, acc.all, acc.ready, acc.delayed, acc.expstr
  local ttlall, delayall, idtext = ARGV[p], ARGV[p + 1], ARGV[p + 2]
  p = p + 3
  local eachttl, eachdelay = ttlall == '*', delayall == '*'
  -- One TTL for all, or per message: a TTL's text -> its number (`tonumber` is strtod, ~1.2k
  -- instructions, and a request's messages mostly share one TTL, or none).
  local ttl, ttls
  if eachttl then ttls = {} else ttl = tonumber(ttlall) or ttl0 end
  local delay = 0
  if honour and not eachdelay then delay = tonumber(delayall) or delay0 end
  local idlen = #idtext / count
  -- TTL -> the shared fields of an undelayed message's record (record_middle), for this request
  -- (its client's).
  local middles = {}
  -- The previous message's TTL when it was undelayed, with its record's shared fields and its
  -- expiry as text: a request's messages mostly share one TTL, and then each message after the
  -- first skips the lookups. `run`: the expiry whose mark run the previous message ended
  -- (place_expiry).
  local last_ttl, middle, es, run
  local mk = acc.mk
  -- recs and all grow by two per message, in step; ready and delayed on their own.
  local n, nr, nd, ni = #recs, #ready, #delayed, #ids
  for i = 1, count do
    seq = seq + 1
    local id = idtext
    if count > 1 then id = sub(idtext, (i - 1) * idlen + 1, i * idlen) end
    if eachttl then
      local ttlraw = ARGV[p]
      p = p + 1
      ttl = ttls[ttlraw]
      if ttl == nil then
        ttl = tonumber(ttlraw) or ttl0
        ttls[ttlraw] = ttl
      end
    end
    if eachdelay then
      if honour then delay = tonumber(ARGV[p]) or delay0 end
      p = p + 1
    end
    local body = ARGV[p]
    p = p + 1
    local expires = now + ttl * 1000
    -- int(seq) without its checks: a seq is whole and far below 1e17 (first_seq).
    local s = format('%d', seq)
    ni = ni + 1
    ids[ni] = id
    recs[n + 1] = id
    if delay ~= 0 or ttl ~= last_ttl then
      -- The record's shared fields, once per TTL of the request's undelayed messages (keyed by
      -- the number: a text key would cost a conversion per message); a delayed one's are its own.
      middle = delay == 0 and middles[ttl]
      if not middle then
        middle = record_middle(now, ttl, expires, now + delay * 1000, client)
        if delay == 0 and ttl == ttl then middles[ttl] = middle end
      end
      es = int_by(expstr, ttl, expires)
      if delay == 0 then last_ttl = ttl else last_ttl = nil end
    end
    recs[n + 2] = new_record(seq, middle, body)
    all[n + 1] = s
    all[n + 2] = id
    n = n + 2
    if expires == run then
      mk[#mk] = s
    else
      run = place_expiry(acc, id, s, expires, es)
    end
    if delay > 0 then
      delayed[nd + 1] = int(now + delay * 1000)
      delayed[nd + 2] = id
      nd = nd + 2
    elseif not acc.cursor then
      ready[nr + 1] = s
      ready[nr + 2] = id
      nr = nr + 2
    end
  end
  return seq
end

--- Where the arguments of `count` messages that start at `p` (as append_messages reads them) end:
--- after the three for all of them, each message's body, and its TTL and delay where they are its
--- own. How a caller skips a request that stores nothing.
local function messages_end(p, count)
  return p + 3 + count * (1 + (ARGV[p] == '*' and 1 or 0) + (ARGV[p + 1] == '*' and 1 or 0))
end

--- `expstr`: TTL -> its expiry as text, for one `now` (one acc per script call). `cursor`: the
--- queue has a ready cursor, so messages posted without delay are not written to r (they are
--- appended past it, fresh). `marks`: the queue record's el, emax, em (HMGET, in that order):
--- whether new messages may be covered by expiry marks, and the last mark (lib.lua, "Expiry
--- marks"); `mk` collects the marks to add, `exp` / `sq` the e / s entries.
local function new_acc(cursor, marks)
  return {
    recs = {}, all = {}, ready = {}, delayed = {}, exp = {}, sq = {}, mk = {}, expstr = {}, cursor = cursor,
    covering = marks[1] ~= false, emax = tonumber(marks[2]) or -1, em = marks[3],
  }
end

--- Writes what append_messages gathered, and the queue record's fields `qset` (name, value, ...;
--- optional) in the same HSET as the marks' (write_expiries).
local function write_acc(k, acc, qset)
  if #acc.recs > 0 then
    call_chunked('HSET', k.m, acc.recs, CHUNK * 2)
    call_chunked('ZADD', k.a, acc.all, CHUNK * 2)
    if #acc.ready > 0 then call_chunked('ZADD', k.r, acc.ready, CHUNK * 2) end
    if #acc.delayed > 0 then call_chunked('ZADD', k.d, acc.delayed, CHUNK * 2) end
  end
  write_expiries(k, acc, qset or {})
end

--- The queue fields post_settings reads.
local function post_fields(k)
  return redis.call('HMGET', k.q, 'maxpost', 'ttl', 'delay')
end

--- The queue's post settings for one request, from post_fields: maxpost (number or nil, and as
--- stored), default TTL, whether delays are honoured and the default delay. The fields are the
--- queue policy resolved when metadata was written; this applies it as queue-policy.ts
--- `postSettings` does (`limits`: PostOptions.queuePolicy).
local function post_settings(qf, defttl, limits)
  local ttl0, honour, delay0 = defttl, false, 0
  if limits then
    ttl0 = tonumber(qf[2]) or defttl
    if qf[3] then honour, delay0 = true, tonumber(qf[3]) end
  end
  return tonumber(qf[1]), qf[1], ttl0, honour, delay0
end

-- A stored message as a migration reads it (readForMigration, readJournal: shared/storage/
-- migration.ts `MessageRecord`), appending the active claim it names to `claims` once (`names`
-- remembers the claims already appended).
local function migrationRecord(k, id, rec, now, names, claims)
  if rec[R_CLAIM] ~= '' and rec[R_CLAIMEXP] > now and not names[rec[R_CLAIM]] then
    names[rec[R_CLAIM]] = true
    local c = redis.call('HGET', k.c, rec[R_CLAIM])
    if c then
      local claim = decode(c)
      if claim[C_EXPIRES] > now then
        claims[#claims + 1] = { rec[R_CLAIM], num(claim[C_TTL]), claim[C_EXPIRES], claim[C_UPDATED] }
      end
    end
  end
  return { id, rec[R_SEQ], rec[R_CREATED], num(rec[R_TTL]), rec[R_EXPIRES], rec[R_VISIBLE], rec[R_CC],
    rec[R_CLAIM], rec[R_CLAIMEXP], rec[R_CLIENT], rec[R_BODY] }
end
