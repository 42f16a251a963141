/**
 * A `DataDriver` wrapper that times every operation and counts messages, for Prometheus. It
 * implements the same contract and changes no behaviour, so it wraps any driver — the worker's
 * store, or the proxy's RPC client.
 */
import type { Counter, Histogram } from 'prom-client'
import { DRIVER_OPERATIONS, type DataDriver, type DriverOperation } from '../../shared/storage/contract.js'

export interface DriverMetrics {
  /** Duration of each operation, labelled `operation` and `outcome` (ok / error). */
  duration: Histogram<'operation' | 'outcome' | 'pool' | 'worker'>
  /** Messages stored by successful posts. */
  posted?: Counter<'pool'>
  /** Messages handed out by successful claims. */
  claimed?: Counter<'pool'>
  /** Messages named by successful deletes (single, bulk) and popped. */
  deleted?: Counter<'pool'>
}

/** Wraps `driver`; `labels` (pool, worker) are added to every series. */
export function metered<T extends DataDriver>(driver: T, metrics: DriverMetrics, labels: { pool: string; worker?: string }): T {
  const wrapped = Object.create(driver) as T
  const base = { pool: labels.pool, worker: labels.worker ?? '' }
  const { posted, claimed, deleted } = metrics
  const counted: Partial<Record<DriverOperation, (result: unknown, args: unknown[]) => void>> = {
    postMessages: (r) => posted?.inc({ pool: labels.pool }, (r as unknown[]).length),
    createClaim: (r) => {
      if (r !== null) claimed?.inc({ pool: labels.pool }, (r as { messages: unknown[] }).messages.length)
    },
    popMessages: (r) => deleted?.inc({ pool: labels.pool }, (r as unknown[]).length),
    deleteMessage: () => deleted?.inc({ pool: labels.pool }, 1),
    deleteMessages: (_r, args) => deleted?.inc({ pool: labels.pool }, (args[1] as unknown[]).length),
  }
  for (const op of DRIVER_OPERATIONS) {
    const fn = (driver[op] as (...a: unknown[]) => Promise<unknown>).bind(driver)
    const count = counted[op]
    const ok = metrics.duration.labels({ ...base, operation: op, outcome: 'ok' })
    const err = metrics.duration.labels({ ...base, operation: op, outcome: 'error' })
    Object.defineProperty(wrapped, op, {
      // A plain .then rather than an async function: one promise per call, not three.
      value: (...args: unknown[]) => {
        const t0 = performance.now()
        return fn(...args).then(
          (result) => {
            ok.observe((performance.now() - t0) / 1000)
            count?.(result, args)
            return result
          },
          (e: unknown) => {
            err.observe((performance.now() - t0) / 1000)
            throw e
          },
        )
      },
    })
  }
  return wrapped
}
