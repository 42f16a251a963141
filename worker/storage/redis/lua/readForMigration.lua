--[[
  readForMigration: one batch of the migration copy cursor (shared/storage/migration.ts):
  messages after seq `after` in FIFO order, claimed and delayed ones included, expired ones and
  the chunks of a large post being staged left out, at most `limit` records or `maxbytes` of
  bodies (one record at least). Under a `moved` fence a staged post can never commit any more
  (its chunks are refused): it is rolled back here, a bounded step per call.
  KEYS: [1] the queue's record key (lib.lua, queue_keys); reads q, m, a, c, f.
  ARGV: [1] now (ms)  [2] after (seq; 0 = from the start)  [3] limit  [4] maxbytes
  Returns: { next (last seq examined), end (1|0), records, claims } where a record is
           { id, seq, created, ttl, expires, visible, claimCount, claimId or '', claimExpires,
           clientId, body } and a claim { id, ttl, expires, updated } (the active claims the
           records name), meta (the metadata JSON text; '' when the queue does not exist),
           journal (1 when the journal holds entries or a reset, else 0).
  Errors: none.
]]
local k = queue_keys(0)
local now = tonumber(ARGV[1])
local after = ARGV[2]
local limit = tonumber(ARGV[3])
local maxbytes = tonumber(ARGV[4])
local pending = 0
if redis.call('EXISTS', k.j) == 1 or redis.call('HGET', k.f, 'reset') == '1' then pending = 1 end
local meta = redis.call('HGET', k.q, 'meta')
if not meta then return { after, 1, {}, {}, '', pending } end
if redis.call('HGET', k.f, 'state') == 'moved' then unstage(k, PROMOTE_STEP) end
local upto = visible_max(k.q)
local page = redis.call('ZRANGEBYSCORE', k.a, '(' .. after, upto, 'WITHSCORES', 'LIMIT', '0', limit)
local n = #page / 2
local records, names, claims = {}, {}, {}
local bytes, examined = 0, 0
local next = after
if n > 0 then
  local ids = {}
  for i = 1, #page, 2 do ids[#ids + 1] = page[i] end
  local raws = hmget(k.m, ids)
  for i = 1, n do
    examined = i
    next = page[i * 2]
    local raw = raws[i]
    if raw then
      local rec = decode_record(raw)
      if rec[R_EXPIRES] > now then
        records[#records + 1] = migrationRecord(k, ids[i], rec, now, names, claims)
        bytes = bytes + #rec[R_BODY]
        if bytes >= maxbytes then break end
      end
    end
  end
end
local cut = examined == limit or bytes >= maxbytes
local ended = 0
if not cut and not redis.call('HGET', k.q, 'stagelo') then ended = 1 end
return { next, ended, records, claims, meta, pending }
