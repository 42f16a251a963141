--[[
  setQueueMetadata: replaces the metadata of an existing queue.
  KEYS: [1] the queue's record key (lib.lua, queue_keys); only q (and f, read) are touched.
  ARGV: [1] metadata JSON text
        [2] maxpost [3] ttl [4] delay [5] dlq [6] dlqmax [7] dlqttl  ('' when absent)
  Returns: 1 when replaced, 0 when the queue does not exist (the driver raises not_found);
           MOVED (lib.lua, fence_check) when fenced.
  Errors: none.
]]
local k = queue_keys(0)
local moved, journalled = fence_check(k)
if moved then return moved end
if redis.call('EXISTS', k.q) == 0 then return 0 end
redis.call('HSET', k.q, 'meta', ARGV[1])
local names = { 'maxpost', 'ttl', 'delay', 'dlq', 'dlqmax', 'dlqttl' }
for n = 1, #names do
  if ARGV[n + 1] == '' then
    redis.call('HDEL', k.q, names[n])
  else
    redis.call('HSET', k.q, names[n], ARGV[n + 1])
  end
end
return 1
