--[[
  collectGarbage: one bounded step of garbage collection on one queue: deletes up to `step`
  expired messages and up to `step` expired claims, and moves up to `step` due delayed and
  `step` claim-expired messages to the ready index. Readers never see expired data either way;
  this reclaims memory and keeps the ready index short.
  KEYS: [1] the queue's record key (lib.lua, queue_keys); f and j are not touched.
  ARGV: [1] now (ms)  [2] step
  Returns: { expired messages deleted, expired claims deleted, messages made ready, expiry marks
           dropped (lib.lua, "Expiry marks") }.
  Errors: none.
]]
local k = queue_keys(0)
local now = tonumber(ARGV[1])
local step = tonumber(ARGV[2])
local msgs, claims, marks = collect(k, now, step)
local ready = promote(k, now, step)
-- An abandoned large post (lib.lua) is rolled back a step at a time.
local st = redis.call('HMGET', k.q, 'stage', 'stagedl')
if st[1] and tonumber(st[2]) <= now then unstage(k, step) end
return { msgs, claims, ready, marks }
