--[[
  createQueue: creates the queue record with its metadata if the queue does not exist.
  KEYS: [1] the queue's record key (lib.lua, queue_keys); only q (and f, read) are touched.
  ARGV: [1] now (ms)  [2] metadata JSON text
        [3] maxpost [4] ttl [5] delay [6] dlq [7] dlqmax [8] dlqttl  (reserved fields pre-parsed
        by the driver; '' when absent)
  Returns: 1 if created, 0 if the queue already existed (its metadata is left untouched);
           MOVED (lib.lua, fence_check) when fenced.
  Errors: none.
]]
local k = queue_keys(0)
local moved, journalled = fence_check(k)
if moved then return moved end
local now = tonumber(ARGV[1])
if redis.call('EXISTS', k.q) == 1 then return 0 end
write_new_queue(k.q, now, first_seq(now), first_seq(now), ARGV[2])
local names = { 'maxpost', 'ttl', 'delay', 'dlq', 'dlqmax', 'dlqttl' }
for n = 1, #names do
  if ARGV[n + 2] ~= '' then redis.call('HSET', k.q, names[n], ARGV[n + 2]) end
end
return 1
