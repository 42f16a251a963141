--[[
  readJournal: up to `limit` journal entries, oldest first, each with the message's current
  record (or none when it no longer exists or has expired), and the reset marker.
  KEYS: the eleven keys of the queue (lib.lua); reads m, c, f, j.
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
      local rec = decode(raw)
      if rec[R_EXPIRES] > now then
        record = { ids[i], rec[R_SEQ], rec[R_CREATED], num(rec[R_TTL]), rec[R_EXPIRES], rec[R_VISIBLE], rec[R_CC],
          rec[R_CLAIM], rec[R_CLAIMEXP], rec[R_CLIENT], rec[R_BODY] }
        bytes = bytes + #rec[R_BODY]
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
      end
    end
    entries[#entries + 1] = { ids[i], page[i * 2], record }
    if bytes >= maxbytes then break end
  end
end
return { reset, entries, claims }
