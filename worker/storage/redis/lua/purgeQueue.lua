--[[
  purgeQueue: deletes every message and claim of the queue (claimed and delayed ones too);
  keeps the queue record, its metadata and its sequence counter.
  Under a journal fence the purge is journalled as a reset.
  KEYS: the eleven keys of the queue (lib.lua).
  ARGV: none.
  Returns: 1 if the queue exists, else 0; MOVED (lib.lua, fence_check) when fenced.
  Errors: none.
]]
local k = queue_keys(0)
local moved, journalled = fence_check(k)
if moved then return moved end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if journalled then redis.call('HSET', k.f, 'reset', 1) end
redis.call('UNLINK', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9])
-- A large post being staged lost its messages: its next chunk finds no stage and starts over.
redis.call('HDEL', KEYS[1], 'stage', 'stagelo', 'stagedl', 'stagen')
return 1
