-- Missive's bench: the Lua script Zaqar 15's Redis message store calls to index posted messages.
--
-- Debian's python3-zaqar 15.0.0 does not ship zaqar/storage/redis/scripts/, so without this file
-- every message POST answers 503; perf/zaqar/zaqar_wsgi.py makes Zaqar read it from here.
-- Written for Missive from the caller's contract in Zaqar's source,
-- zaqar/storage/redis/messages.py (MessageController._index_messages and post):
--   KEYS[1]  the queue's message-id set (sorted set; the score is the message's rank, FIFO)
--   KEYS[2]  the queue's rank counter
--   ARGV[1]  how many ids follow; ARGV[2..] the ids, in posting order
-- Every id gets the next rank, atomically (Lua scripts run alone), so concurrent posts to one
-- queue never interleave their ranks.
local n = tonumber(ARGV[1])
if n == nil or n < 1 then
  return 0
end
local last = redis.call('INCRBY', KEYS[2], n)
local first = last - n
for i = 1, n do
  redis.call('ZADD', KEYS[1], first + i, ARGV[i + 1])
end
return last
