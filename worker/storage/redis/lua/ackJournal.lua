--[[
  ackJournal: removes the given journal entries that are still at the given version (an entry
  journalled again since it was read stays); optionally acknowledges the reset marker.
  KEYS: [1] the queue's record key (lib.lua, queue_keys); writes f, j.
  ARGV: [1] '1' to acknowledge the reset  [2..] id, version pairs
  Returns: 1.
  Errors: none.
]]
local k = queue_keys(0)
if redis.call('EXISTS', k.f) == 0 then return 1 end
for i = 2, #ARGV, 2 do
  local v = redis.call('ZSCORE', k.j, ARGV[i])
  if v and tonumber(v) == tonumber(ARGV[i + 1]) then redis.call('ZREM', k.j, ARGV[i]) end
end
if ARGV[1] == '1' then redis.call('HSET', k.f, 'reset', 0) end
return 1
