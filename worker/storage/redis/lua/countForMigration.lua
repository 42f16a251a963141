--[[
  countForMigration: the queue's unexpired messages, fences ignored (what stats' total says).
  KEYS: [1] the queue's record key (lib.lua, queue_keys); reads q, a, e, s, t.
  ARGV: [1] now (ms)
  Returns: the count.
  Errors: none.
]]
local k = queue_keys(0)
if redis.call('EXISTS', k.q) == 0 then return 0 end
local total = live_count(k, tonumber(ARGV[1])) - (tonumber(redis.call('HGET', k.q, 'stagen')) or 0)
if total < 0 then return 0 end
return total
