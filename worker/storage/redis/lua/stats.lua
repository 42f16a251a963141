--[[
  stats: counts and the oldest and newest unexpired messages, exact at `now` whatever garbage
  collection has or has not removed yet (oldest/newest: see `first` for the bounded scan).
  KEYS: [1] the queue's record key (lib.lua, queue_keys); reads q, m, a, d, i, e, f, s, t.
  ARGV: [1] now (ms)
  Returns: MOVED (lib.lua, fence_check) when fenced; { total, claimed, delayed } or, when total > 0,
           { total, claimed, delayed, oldestId, oldestCreated, newestId, newestCreated }; {0, 0}
           for a missing queue.
  delayed: messages whose delay has not run out, not expired and not staged; exact up to
  STATS_SCAN of them, past that the count of d (which can still hold expired messages the
  collector has not removed, or those of a post being staged) capped at the free ones.
  Errors: none.
]]
local k = queue_keys(0)
local moved, _ = fence_check(k)
if moved then return moved end
local now = tonumber(ARGV[1])
if redis.call('EXISTS', k.q) == 0 then return { 0, 0 } end
-- b: the expiry marks' boundary (lib.lua): covered messages at or below it are expired.
local total, b = live_count(k, now)
local claimed = redis.call('ZCOUNT', k.i, '(' .. ARGV[1], '+inf')
-- A large post being staged is not counted (lib.lua): its messages are not visible yet.
local upto = visible_max(k.q)
total = total - (tonumber(redis.call('HGET', k.q, 'stagen')) or 0)
if total <= 0 then return { 0, claimed, 0 } end
-- Delayed: visible-at still ahead. Exact up to STATS_SCAN of them (each one's expiry checked, so an
-- expired message the collector has not removed yet is not counted); past that, the index's count,
-- capped at the free messages (bounded work).
local delayed = redis.call('ZCOUNT', k.d, '(' .. ARGV[1], '+inf')
if delayed > 0 and delayed <= STATS_SCAN then
  local ids = redis.call('ZRANGEBYSCORE', k.d, '(' .. ARGV[1], '+inf')
  local live = unexpired(k, ids, now, b)
  -- Messages of a large post being staged (seq from stagelo on) are not counted, as in total.
  local lo = tonumber(redis.call('HGET', k.q, 'stagelo'))
  local seqs = lo and zmscore(k.a, ids) or {}
  delayed = 0
  for n = 1, #ids do
    if live[n] and not (lo and seqs[n] and tonumber(seqs[n]) >= lo) then delayed = delayed + 1 end
  end
end
delayed = math.min(delayed, math.max(total - claimed, 0))

--- The first unexpired message from one end of the FIFO order, examining at most STATS_SCAN
--- entries (bounded work: expired messages not yet collected are skipped); past that, any
--- unexpired message stands in (the one expiring soonest), until the collector catches up.
local function first(rev)
  local start = 0
  while start < STATS_SCAN do
    local ids
    if rev then
      ids = redis.call('ZREVRANGEBYSCORE', k.a, upto, '-inf', 'LIMIT', start, 64)
    else
      ids = redis.call('ZRANGEBYSCORE', k.a, '-inf', upto, 'LIMIT', start, 64)
    end
    if #ids == 0 then return nil end
    local live = unexpired(k, ids, now, b)
    for n = 1, #ids do
      if live[n] then
        local rec = decode_record(redis.call('HGET', k.m, ids[n]))
        return { ids[n], rec[R_CREATED] }
      end
    end
    start = start + 64
  end
  local any = redis.call('ZRANGEBYSCORE', k.e, '(' .. ARGV[1], '+inf', 'LIMIT', '0', '1')
  if #any == 0 then
    -- Every unexpired message is covered by the marks: the oldest past the boundary is one.
    local past = redis.call('ZRANGEBYSCORE', k.a, b and '(' .. b or '-inf', upto, 'LIMIT', '0', '64')
    local live = unexpired(k, past, now, b)
    for n = 1, #past do
      if live[n] then
        any = { past[n] }
        break
      end
    end
  end
  if #any == 0 then return nil end
  return { any[1], decode_record(redis.call('HGET', k.m, any[1]))[R_CREATED] }
end
local out = { total, claimed, delayed }
local old, new = first(false), first(true)
if old and new then
  out[4], out[5], out[6], out[7] = old[1], old[2], new[1], new[2]
end
return out
