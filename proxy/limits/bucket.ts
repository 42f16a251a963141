/**
 * Token buckets: `rate` tokens per second, holding at most `burst`. A request taking `n` tokens
 * (at most `burst`) passes when the bucket holds `n`; otherwise it is refused with the seconds
 * until it would.
 */

/** The seconds to wait when refused, or 0 when `n` tokens were taken. */
export type Verdict = number

/** In-process buckets, keyed by string: the truth for a single-process deployment. */
export class LocalBuckets {
  readonly #buckets = new Map<string, { tokens: number; at: number }>()
  readonly #max: number

  /** `max`: most buckets kept; beyond it the least recently created is dropped (it refills to full). */
  constructor(max = 100_000) {
    this.#max = max
  }

  take(key: string, n: number, rate: number, burst: number, now = performance.now()): Verdict {
    // A post of more messages than the burst costs a full bucket: it passes when the bucket is full.
    if (n > burst) n = burst
    let b = this.#buckets.get(key)
    if (b === undefined) {
      if (this.#buckets.size >= this.#max) this.#buckets.delete(this.#buckets.keys().next().value!)
      b = { tokens: burst, at: now }
      this.#buckets.set(key, b)
    } else {
      b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate)
      b.at = now
    }
    if (b.tokens >= n) {
      b.tokens -= n
      return 0
    }
    return (n - b.tokens) / rate
  }
}

/**
 * The same bucket in Redis, one hash per key ({tokens, at}), updated atomically by a script using
 * Redis's own clock (TIME), so every proxy shares one bucket per project whatever its clock.
 * KEYS[1] bucket; ARGV n, rate, burst. Returns the wait in microseconds (0: taken).
 */
export const REDIS_TAKE = `
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local n = math.min(tonumber(ARGV[1]), burst)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1])
local at = tonumber(b[2])
if tokens == nil then
  tokens = burst
else
  tokens = math.min(burst, tokens + (now - at) / 1000000 * rate)
end
local wait = 0
if tokens >= n then
  tokens = tokens - n
else
  wait = math.ceil((n - tokens) / rate * 1000000)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return wait
`
