-- Missive's bench: the Lua script Zaqar 15's Redis claim controller calls to claim messages.
--
-- Debian's python3-zaqar 15.0.0 does not ship zaqar/storage/redis/scripts/, so without this file
-- every claim POST answers 503; perf/zaqar/zaqar_wsgi.py makes Zaqar read it from here.
-- Written for Missive from the caller's contract in Zaqar's source,
-- zaqar/storage/redis/claims.py (ClaimController._claim_messages and create), and the message
-- hash fields of zaqar/storage/redis/models.py (c = claim id, '' when never claimed; c.e = claim
-- expiry; e = message expiry; t = message ttl; UNIX seconds):
--   KEYS[1]  the queue's message-id set (sorted set, oldest first)
--   ARGV     now, limit, claim_id, claim_expires, msg_ttl, msg_expires
--   returns  the ids claimed, oldest first
-- Walks the set from its head in pages of 100. Ids whose hash is gone (the message expired) are
-- collected and removed from the set at the end. Zaqar's store claims in FIFO order, so once one
-- live message is free (never claimed, or its claim expired) every later one is too: from there
-- on messages are claimed without reading their claim fields — the same shortcut Zaqar's own
-- script takes, so Zaqar is measured at its own cost. A message that would expire before its
-- claim does gets the claim's ttl + grace as its new ttl and expiry, as claims.py expects.
local set = KEYS[1]
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local claim_id = ARGV[3]
local claim_expires = tonumber(ARGV[4])
local msg_ttl = tonumber(ARGV[5])
local msg_expires = tonumber(ARGV[6])

local PAGE = 100
local claimed = {}
local expired = {}
local free_from_here = false
local offset = 0

while #claimed < limit do
  local ids = redis.call('ZRANGE', set, offset, offset + PAGE - 1)
  if #ids == 0 then
    break
  end
  offset = offset + PAGE
  for _, id in ipairs(ids) do
    if not free_from_here then
      local f = redis.call('HMGET', id, 'c', 'c.e')
      if f[1] == false and f[2] == false then
        expired[#expired + 1] = id
      elseif f[1] == '' or tonumber(f[2]) <= now then
        free_from_here = true
      end
    end
    if free_from_here then
      local expires = redis.call('HGET', id, 'e')
      if expires ~= false then
        redis.call('HSET', id, 'c', claim_id, 'c.e', claim_expires)
        if tonumber(expires) < claim_expires then
          redis.call('HSET', id, 't', msg_ttl, 'e', msg_expires)
        end
        claimed[#claimed + 1] = id
        if #claimed == limit then
          break
        end
      end
    end
  end
end

if #expired > 0 then
  redis.call('ZREM', set, unpack(expired))
end
return claimed
