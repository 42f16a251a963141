--[[
  deleteQueue: deletes the queue with all its messages and claims (UNLINK: big sets are freed
  in the background, the call stays O(number of keys)).
  The migration fence and journal (f, j) stay: a fence outlives the queue's data; under a
  journal fence the delete is journalled as a reset.
  KEYS: [1] the queue's record key (lib.lua, queue_keys).
  ARGV: none.
  Returns: 1 if the queue existed, else 0; MOVED (lib.lua, fence_check) when fenced.
  Errors: none.
]]
local k = queue_keys(0)
local moved, journalled = fence_check(k)
if moved then return moved end
local existed = redis.call('EXISTS', KEYS[1])
redis.call('UNLINK', k.q, k.m, k.a, k.r, k.d, k.i, k.e, k.c, k.x, k.s, k.t)
if journalled and existed == 1 then redis.call('HSET', k.f, 'reset', 1) end
return existed
