--[[
  listMessages: one page of messages in FIFO order, filtered; scans past filtered messages until
  the page is full or the queue ends (no short pages while matches follow).
  KEYS: the nine keys of the queue (lib.lua); reads q, m, a.
  ARGV: [1] now (ms)  [2] marker: seq after which to start ('' = from the head)  [3] limit
        [4] clientId  [5] echo ('1'|'0')  [6] includeClaimed ('1'|'0')
        [7] includeDelayed ('1'|'0'|'' = the queue's default)
  Returns: { effective includeDelayed (1|0), message... } where a message is
           {id, body, ttl, created, claimId or '', claimCount, seq}. Expired messages, whatever
           garbage collection has done, are never returned.
  Errors: none.
]]
local k = queue_keys(0)
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[3])
local client, echo, claimed = ARGV[4], ARGV[5] == '1', ARGV[6] == '1'
local qf = redis.call('HMGET', k.q, 'meta', 'delay')
-- API.md §5.2: without a queue default delay, delayed messages are always listed.
local delayed = (not qf[2]) or ARGV[7] == '1'
local out = { delayed and 1 or 0 }
if not qf[1] then return { 1 } end
if limit <= 0 then return out end
local after = '-inf'
if ARGV[2] ~= '' then after = '(' .. ARGV[2] end
local batch = math.max(limit, 64)
local got = 0
while got < limit do
  local page = redis.call('ZRANGEBYSCORE', k.a, after, '+inf', 'WITHSCORES', 'LIMIT', 0, batch)
  if #page == 0 then break end
  local ids = {}
  for n = 1, #page, 2 do ids[#ids + 1] = page[n] end
  local raws = hmget(k.m, ids)
  for n = 1, #ids do
    local raw = raws[n]
    if raw then
      local rec = decode(raw)
      if rec[R_EXPIRES] > now
        and (claimed or rec[R_CLAIM] == '' or rec[R_CLAIMEXP] <= now)
        and (delayed or rec[R_VISIBLE] <= now)
        and (echo or rec[R_CLIENT] ~= client) then
        out[#out + 1] = view(ids[n], rec, now)
        got = got + 1
        if got >= limit then break end
      end
    end
  end
  after = '(' .. page[#page]
  if #page < batch * 2 then break end
end
return out
