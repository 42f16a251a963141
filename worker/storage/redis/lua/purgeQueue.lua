--[[
  purgeQueue: deletes every message and claim of the queue (claimed and delayed ones too);
  keeps the queue record, its metadata and its sequence counter.
  Under a journal fence the purge is journalled as a reset.
  KEYS: [1] the queue's record key (lib.lua, queue_keys).
  ARGV: none.
  Returns: 1 if the queue exists, else 0; MOVED (lib.lua, fence_check) when fenced.
  Errors: none.
]]
local k = queue_keys(0)
local moved, journalled = fence_check(k)
if moved then return moved end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if journalled then redis.call('HSET', k.f, 'reset', 1) end
redis.call('UNLINK', k.m, k.a, k.r, k.d, k.i, k.e, k.c, k.x, k.s, k.t)
-- A large post being staged lost its messages: its next chunk finds no stage and starts over.
-- The expiry marks (lib.lua) start afresh; a record from before them takes them now.
redis.call('HDEL', k.q, 'stage', 'stagelo', 'stagedl', 'stagen', 'emax', 'em', 'eb', 'ec')
redis.call('HSET', k.q, 'el', '1')
return 1
