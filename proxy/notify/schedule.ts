/**
 * The retry schedule of a failed delivery: Zaqar's phases and backoff functions
 * (zaqar/notification/tasks/webhook.py, `_retry_post`), as a list of delays in seconds, one per
 * retry. Zaqar sleeps in a thread; the notifier waits on a timer, one subscription at a time.
 */
import { isObject } from '../json.js'
import { RETRY_DEFAULTS } from './retry-policy.js'

type Policy = Record<string, unknown>

const num = (p: Policy, key: keyof typeof RETRY_DEFAULTS): number => {
  const v = p[key]
  return typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'boolean' ? Number(v) : RETRY_DEFAULTS[key]
}

/** Python's `range(start, stop, step)`. */
function range(start: number, stop: number, step: number): number[] {
  const out: number[] = []
  for (let x = start; x < stop; x += step) out.push(x)
  return out
}

const BACKOFF: Record<string, (min: number, max: number, times: number) => number[]> = {
  linear: (min, max, times) => range(min, max, times),
  geometric: (min, max, times) => {
    const xMax = Math.trunc((max - min) / times)
    const k = 10 ** (Math.log10(max / min) / (xMax - 1))
    return range(1, xMax + 1, 1).map((a) => Math.trunc(min * k ** (a - 1)))
  },
  exponential: (min, max, times) => {
    const xMax = Math.trunc((max - min) / times)
    const k = 10 ** (Math.log10(max / min) / (xMax - 1))
    const p = min / k
    return range(1, xMax + 1, 1).map((a) => Math.trunc(p * k ** a))
  },
  arithmetic: (min, max, times) => {
    const xMax = Math.trunc((max - min) / times)
    const d = (2.0 * (max - min)) / (xMax * (xMax - 1))
    return range(1, xMax + 1, 1).map((a) => Math.trunc(min + ((a - 1) * a * d) / 2))
  },
}

/** Which policy applies (Zaqar's rule): the subscription's, unless either says `ignore_subscription_override`. */
export function effectivePolicy(subscription: unknown, queue: unknown): Policy {
  const sub = isObject(subscription) ? subscription : {}
  const q = isObject(queue) ? queue : {}
  if (sub.ignore_subscription_override === true || q.ignore_subscription_override === true) return q
  return Object.keys(sub).length > 0 ? sub : q
}

/** Delays (seconds) before each retry after the first attempt failed; its length is the retry count. */
export function retryDelays(policy: Policy): number[] {
  const min = num(policy, 'minimum_delay')
  const max = num(policy, 'maximum_delay')
  const fn = BACKOFF[typeof policy.retry_backoff_function === 'string' ? policy.retry_backoff_function : 'linear'] ?? BACKOFF.linear!
  let backoff: number[]
  try {
    backoff = fn(min, max, RETRY_DEFAULTS.linear_interval).filter((x) => Number.isFinite(x) && x >= 0)
  } catch {
    backoff = []
  }
  return [
    ...Array<number>(Math.max(0, num(policy, 'retries_with_no_delay'))).fill(0),
    ...Array<number>(Math.max(0, num(policy, 'minimum_delay_retries'))).fill(min),
    ...backoff,
    ...Array<number>(Math.max(0, num(policy, 'maximum_delay_retries'))).fill(max),
  ]
}
