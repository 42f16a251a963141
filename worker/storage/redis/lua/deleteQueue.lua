--[[
  deleteQueue: deletes the queue with all its messages and claims (UNLINK: big sets are freed
  in the background, the call stays O(number of keys)).
  KEYS: the nine keys of the queue (lib.lua).
  ARGV: none.
  Returns: 1 if the queue existed, else 0.
  Errors: none.
]]
local existed = redis.call('EXISTS', KEYS[1])
redis.call('UNLINK', unpack(KEYS))
return existed
