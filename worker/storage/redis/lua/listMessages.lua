--[[
  listMessages: one page of messages in FIFO order, filtered, with bounded work: the scan stops
  when the page is full, when the queue ends, or when it has examined `budget` entries (and
  skipped LIST_SKIP_BYTES of records it did not return), whichever comes first. A page cut by
  the budget may be short, even empty; its next marker is the last entry examined, so following
  it resumes the scan where it stopped (issue 11: a queue holding 100k delayed messages cost
  ~430 ms per listing and stalled every tenant on the pool).
  KEYS: [1] the queue's record key (lib.lua, queue_keys); reads q, m, a, f.
  ARGV: [1] now (ms)  [2] marker: seq after which to start ('' = from the head)  [3] limit
        [4] clientId  [5] echo ('1'|'0')  [6] includeClaimed ('1'|'0')
        [7] includeDelayed ('1'|'0'|'' = the queue's default)  [8] budget (entries examined, ≥ limit)
  Returns: MOVED (lib.lua, fence_check) when fenced; else { effective includeDelayed (1|0), next marker ('' = none), message... }
           where a message is six fields (lib.lua, put_view). The next
           marker is set when the page is not empty, or when the budget ran out before the queue
           ended; it is '' only for an empty page at the end of the queue (no endless next
           links). Expired messages, whatever garbage collection has done, are never returned.
  Errors: none.
]]
local k = queue_keys(0)
local moved, _ = fence_check(k)
if moved then return moved end
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[3])
local client, echo, claimed = ARGV[4], ARGV[5] == '1', ARGV[6] == '1'
local budget = math.max(tonumber(ARGV[8]), limit)
-- Whether the queue exists: its record's `created`, not its metadata (lib.lua, queue_exists).
local qf = redis.call('HMGET', k.q, 'created', 'delay', 'stagelo')
-- queue-policy.ts `includeDelayed`: without a queue default delay, delayed messages are always listed.
local delayed = (not qf[2]) or ARGV[7] == '1'
if not queue_exists(k, qf[1]) then return { 1, '' } end
local out = { delayed and 1 or 0, '' }
if limit <= 0 then return out end
local after = '-inf'
if ARGV[2] ~= '' then after = '(' .. ARGV[2] end
-- Messages of a large post still being staged are not visible yet (lib.lua).
local upto = '+inf'
if qf[3] then upto = '(' .. qf[3] end
local got, scanned, skipped = 0, 0, 0
local last = nil
local ended = false
while got < limit and scanned < budget and skipped < LIST_SKIP_BYTES do
  -- Small batches: a skipped record may be a 256 KiB body, and the byte check runs per batch.
  local want = math.min(LIST_BATCH, budget - scanned)
  local page = redis.call('ZRANGEBYSCORE', k.a, after, upto, 'WITHSCORES', 'LIMIT', '0', int(want))
  local n_ids = #page / 2
  if n_ids == 0 then ended = true break end
  local ids = {}
  for n = 1, #page, 2 do ids[#ids + 1] = page[n] end
  local raws = redis.call('HMGET', k.m, unpack(ids))
  for n = 1, n_ids do
    scanned = scanned + 1
    last = page[n * 2]
    local raw = raws[n]
    local taken = false
    if raw then
      local rec = decode_record(raw)
      if rec[R_EXPIRES] > now
        and (claimed or rec[R_CLAIM] == '' or rec[R_CLAIMEXP] <= now)
        and (delayed or rec[R_VISIBLE] <= now)
        and (echo or rec[R_CLIENT] ~= client) then
        add_view(out, ids[n], rec, now)
        got = got + 1
        taken = true
      else
        skipped = skipped + #raw
      end
    end
    if got >= limit then break end
  end
  after = '(' .. last
  if n_ids < want then ended = true break end
end
if last and (got > 0 or not ended) then out[2] = last end
return out
