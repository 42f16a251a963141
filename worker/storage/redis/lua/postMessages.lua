--[[
  postMessages: appends the messages of one or more post requests to the queue (the driver
  coalesces concurrent posts to one queue into one call), creating the queue if needed. Each
  request is all or nothing on its own; requests are applied in ARGV order, which is FIFO order.
  KEYS: the nine keys of the queue (lib.lua).
  ARGV: [1] now (ms)  [2] number of requests, then per request:
          clientId, defaultTtl (s), requestBytes, useQueueLimits ('1'|'0'), count,
          then per message: id, ttl (s, '' = default), delay (s, '' = default), body (JSON text)
  Returns: { created (1 if this call created the queue), status per request }: status 0 when
           stored, else the queue's _max_messages_post_size (as stored, a string) that the request exceeded (the
           request stored nothing; the queue stays created).
  Errors: none.
]]
local k = queue_keys(0)
local now = tonumber(ARGV[1])
local nreq = tonumber(ARGV[2])
local created = ensure_queue(k.q, now)
local qf = redis.call('HMGET', k.q, 'maxpost', 'ttl', 'delay')
local maxpost, qttl, qdelay = tonumber(qf[1]), tonumber(qf[2]), tonumber(qf[3])

local recs, all, ready, delayed, exp = {}, {}, {}, {}, {}
local out = { created }
local stored = 0
local p = 3
for _ = 1, nreq do
  local client, defttl, bytes, limits, count =
    ARGV[p], tonumber(ARGV[p + 1]), tonumber(ARGV[p + 2]), ARGV[p + 3] == '1', tonumber(ARGV[p + 4])
  p = p + 5
  if limits and maxpost and bytes > maxpost then
    out[#out + 1] = qf[1]
    p = p + count * 4
  else
    local ttl0, honour, delay0 = defttl, false, 0
    if limits then
      ttl0 = qttl or defttl
      if qdelay then honour, delay0 = true, qdelay end
    end
    if count > 0 then
      local last = redis.call('HINCRBY', k.q, 'seq', count)
      local seq = last - count
      for _ = 1, count do
        seq = seq + 1
        local id, body = ARGV[p], ARGV[p + 3]
        local ttl = tonumber(ARGV[p + 1]) or ttl0
        local delay = 0
        if honour then delay = tonumber(ARGV[p + 2]) or delay0 end
        p = p + 4
        local expires = now + ttl * 1000
        local visible = now + delay * 1000
        recs[#recs + 1] = id
        recs[#recs + 1] = encode({ seq, now, ttl, expires, visible, 0, '', 0, client, body })
        all[#all + 1] = seq
        all[#all + 1] = id
        if delay > 0 then
          delayed[#delayed + 1] = visible
          delayed[#delayed + 1] = id
        else
          ready[#ready + 1] = seq
          ready[#ready + 1] = id
        end
        exp[#exp + 1] = expires
        exp[#exp + 1] = id
      end
      stored = stored + count
    end
    out[#out + 1] = 0
  end
end
if stored > 0 then
  call_chunked('HSET', k.m, recs, CHUNK * 2)
  call_chunked('ZADD', k.a, all, CHUNK * 2)
  if #ready > 0 then call_chunked('ZADD', k.r, ready, CHUNK * 2) end
  if #delayed > 0 then call_chunked('ZADD', k.d, delayed, CHUNK * 2) end
  call_chunked('ZADD', k.e, exp, CHUNK * 2)
end
return out
