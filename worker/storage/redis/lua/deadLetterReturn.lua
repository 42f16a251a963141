--[[
  deadLetterReturn: undoes the first step of dead-lettering on a Redis Cluster pool (claims.ts)
  for messages whose dead-letter queue refused them (fenced by a migration: it lives elsewhere
  now): each goes back from the outbox into the queue as it was (same id and seq, unclaimed,
  visible), for the proxy to move wherever the DLQ is (the claim reports them, docs/pools.md).
  Messages of a queue deleted meanwhile are dropped with it.
  KEYS: [1] the queue's record key (lib.lua, queue_keys); [2] its outbox.
  ARGV: [1] now (ms), then the ids.
  Returns: the ids put back.
  Errors: none raised.
]]
local k = queue_keys(0)
local o = KEYS[NKEYS + 1]
local now = tonumber(ARGV[1])
local _, journalled = fence_check(k)
local exists = redis.call('EXISTS', k.q) == 1
local back = {}
for p = 2, #ARGV do
  local id = ARGV[p]
  local raw = redis.call('HGET', o, id)
  if raw then
    redis.call('HDEL', o, id)
    if exists then
      local m = cjson.decode(raw)
      redis.call('HSET', k.m, id, encode({ m.s, m.c, m.l, m.x, now, m.n, '', 0, m.k, m.b }))
      redis.call('ZADD', k.a, m.s, id)
      redis.call('ZADD', k.r, m.s, id)
      uncover(k, { m.x, id }, { m.s, id })
      back[#back + 1] = id
    end
  end
end
if journalled then journal(k, back) end
return back
