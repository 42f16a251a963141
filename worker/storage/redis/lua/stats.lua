--[[
  stats: counts and the oldest and newest unexpired messages, exact at `now` whatever garbage
  collection has or has not removed yet.
  KEYS: the nine keys of the queue (lib.lua); reads q, m, a, i, e.
  ARGV: [1] now (ms)
  Returns: { total, claimed } or, when total > 0, { total, claimed, oldestId, oldestCreated,
           newestId, newestCreated }; {0, 0} for a missing queue.
  Errors: none.
]]
local k = queue_keys(0)
local now = tonumber(ARGV[1])
if redis.call('EXISTS', k.q) == 0 then return { 0, 0 } end
local total = redis.call('ZCOUNT', k.e, '(' .. ARGV[1], '+inf')
local claimed = redis.call('ZCOUNT', k.i, '(' .. ARGV[1], '+inf')
if total == 0 then return { 0, claimed } end

--- The first unexpired message walking `a` from one end: ZRANGE (1) or ZREVRANGE (-1).
local function first(cmd)
  local start = 0
  while true do
    local ids = redis.call(cmd, k.a, start, start + 63)
    if #ids == 0 then return nil end
    local exps = zmscore(k.e, ids)
    for n = 1, #ids do
      if exps[n] and tonumber(exps[n]) > now then
        local rec = decode(redis.call('HGET', k.m, ids[n]))
        return { ids[n], rec[R_CREATED] }
      end
    end
    start = start + 64
  end
end
local out = { total, claimed }
local old, new = first('ZRANGE'), first('ZREVRANGE')
if old and new then
  out[3], out[4], out[5], out[6] = old[1], old[2], new[1], new[2]
end
return out
