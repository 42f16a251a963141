/**
 * `_retry_policy` (a queue's metadata or a subscription's options): Zaqar's keys, defaults
 * (zaqar/common/consts.py) and validation (zaqar/transport/validation.py, `_validate_retry_policy`).
 */
import { badRequest } from '../../shared/errors.js'
import { isObject } from '../json.js'

/** Zaqar's defaults (zaqar/common/consts.py). */
export const RETRY_DEFAULTS = {
  retries_with_no_delay: 3,
  minimum_delay_retries: 3,
  minimum_delay: 5,
  maximum_delay: 30,
  maximum_delay_retries: 3,
  /** Step of the backoff functions, seconds. */
  linear_interval: 5,
} as const

const BACKOFF = new Set(['linear', 'arithmetic', 'exponential', 'geometric'])
const INT_KEYS = ['retries_with_no_delay', 'minimum_delay_retries', 'minimum_delay', 'maximum_delay', 'maximum_delay_retries'] as const

/** Python's truthiness, for Zaqar's `if retry_value and …` checks. */
const truthy = (v: unknown): boolean =>
  !(v === undefined || v === null || v === false || v === 0 || v === '' || (Array.isArray(v) && v.length === 0) || (isObject(v) && Object.keys(v).length === 0))

/** Throws Zaqar's 400 when `holder._retry_policy` is malformed (`holder`: options or metadata). */
export function validateRetryPolicy(holder: Record<string, unknown> | null | undefined): void {
  const policy = holder?._retry_policy
  if (truthy(policy) && !isObject(policy)) throw badRequest('retry_policy must be a dict.')
  if (!truthy(policy) || !isObject(policy)) return
  for (const key of INT_KEYS) {
    const v = policy[key]
    // Python's bool is an int: Zaqar lets `true` through here.
    if (truthy(v) && !(typeof v === 'boolean' || (typeof v === 'number' && Number.isInteger(v)))) {
      throw badRequest(`Retry policy: ${key} must be a integer.`)
    }
  }
  const fn = policy.retry_backoff_function
  if (truthy(fn) && typeof fn !== 'string') throw badRequest('retry_backoff_function must be a string.')
  if (truthy(fn) && !BACKOFF.has(fn as string)) throw badRequest('invalid retry_backoff_function.')
  const ignore = policy.ignore_subscription_override
  if (truthy(ignore) && typeof ignore !== 'boolean') throw badRequest('ignore_subscription_override must be a boolean.')
  const min = Number(policy.minimum_delay ?? RETRY_DEFAULTS.minimum_delay)
  const max = Number(policy.maximum_delay ?? RETRY_DEFAULTS.maximum_delay)
  if (max < min) throw badRequest('minimum_delay must less than maximum_delay.')
  if (max - min < 2 * RETRY_DEFAULTS.linear_interval) throw badRequest('invalid minimum_delay and maximum_delay.')
}
