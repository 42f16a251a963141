--[[
  getQueue: the queue's metadata, checked against the migration fence in the same call.
  KEYS: [1] the queue's record key (lib.lua, queue_keys); reads q, f.
  ARGV: none.
  Returns: MOVED (lib.lua, fence_check) when fenced; the metadata JSON text; false (nil) when
           the queue does not exist.
  Errors: none.
]]
local k = queue_keys(0)
local moved = fence_check(k)
if moved then return moved end
return redis.call('HGET', k.q, 'meta')
