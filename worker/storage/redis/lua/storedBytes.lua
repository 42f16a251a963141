--[[
  storedBytes: the memory the queue's messages take in Redis, for the byte quota per project
  (docs/limits.md, "Stored bytes per project"): MEMORY USAGE of the message hash (every message's
  record, body included) and of the indexes and claims that grow with it. MEMORY USAGE samples
  5 fields of a large hash or set (Redis' default) and scales: O(1) per key, an estimate within
  a few per cent for messages of similar size, exact for small (listpack) keys. A script rather
  than separate commands: MEMORY has no key position ioredis can route by, a script goes to the
  queue's slot on a Redis Cluster pool. Fences are not checked: what the queue holds here counts,
  moving or not.
  KEYS: [1] the queue's record key (lib.lua, queue_keys); reads m, a, r, d, i, e, c, x, s, t.
  ARGV: none.
  Returns: bytes (0 for a missing queue).
  Errors: none.
]]
local k = queue_keys(0)
local bytes = 0
for _, key in ipairs({ k.m, k.a, k.r, k.d, k.i, k.e, k.c, k.x, k.s, k.t }) do
  bytes = bytes + (redis.call('MEMORY', 'USAGE', key) or 0)
end
return bytes
