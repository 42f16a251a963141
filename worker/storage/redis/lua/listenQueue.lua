--[[
  listenQueue: marks that a proxy has a listener on the queue (a parked long-poll request, a
  WebSocket push subscription) until now + ARGV[2] ms: the mark (KEYS[2], a ms timestamp as
  text) becomes the later of its value and that. postMessages announces whether the mark is still
  ahead, and the driver publishes a post on the pool's channel only then (docs/redis.md,
  "Announcements"). The mark is its own key, not part of the queue record: a listener may wait on
  a queue that does not exist yet (the post that creates it is announced anyway, and the ones
  after it by the mark), and marking creates no queue. It expires on its own a minute after it
  lapses.
  KEYS: [1] the queue's record key (lib.lua, queue_keys); [2] its listeners' mark (keys.ts).
  ARGV: [1] now (ms)  [2] how long the listener may wait, ms
  Returns: MOVED (lib.lua, fence_check) when fenced; else 1.
  Errors: none.
]]
local k = queue_keys(0)
local moved, _ = fence_check(k)
if moved then return moved end
mark_listening(KEYS[NKEYS + 1], tonumber(ARGV[1]), tonumber(ARGV[2]))
return 1
