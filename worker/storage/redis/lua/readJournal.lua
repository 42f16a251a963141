--[[
  readJournal: up to `limit` journal entries, oldest first, each with the message's current
  record (or none when it no longer exists or has expired), and the reset marker.
  KEYS: [1] the queue's record key (lib.lua, queue_keys); reads m, c, f, j.
  ARGV: [1] now (ms)  [2] limit  [3] maxbytes (of bodies; one entry at least)
  Returns: { reset (1|0), entries, claims } where an entry is { id, version, record or '' }, a
           record as readForMigration returns it, a claim { id, ttl, expires, updated }.
  Errors: none.
]]
local k = queue_keys(0)
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local maxbytes = tonumber(ARGV[3])
local f = redis.call('HMGET', k.f, 'state', 'reset')
if not f[1] then return { 0, {}, {} } end
local reset = 0
if f[2] == '1' then reset = 1 end
local page = redis.call('ZRANGE', k.j, 0, limit - 1, 'WITHSCORES')
local entries, names, claims = {}, {}, {}
local bytes = 0
if #page > 0 then
  local ids = {}
  for i = 1, #page, 2 do ids[#ids + 1] = page[i] end
  local raws = hmget(k.m, ids)
  for i = 1, #ids do
    local record = ''
    local raw = raws[i]
    if raw then
      local rec = decode_record(raw)
      if rec[R_EXPIRES] > now then
        record = migrationRecord(k, ids[i], rec, now, names, claims)
        bytes = bytes + #rec[R_BODY]
      end
    end
    entries[#entries + 1] = { ids[i], page[i * 2], record }
    if bytes >= maxbytes then break end
  end
end
return { reset, entries, claims }
