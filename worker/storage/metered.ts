/**
 * A `DataDriver` wrapper that times every operation and counts messages, for Prometheus. It
 * implements the same contract and changes no behaviour, so it wraps any driver — the worker's
 * store, or the proxy's RPC client.
 */
import type { Counter, Histogram } from 'prom-client'
import type { DataDriver } from '../../shared/storage/contract.js'
import { wrapDriver, type DriverOperation, type OpArgs, type OpResult } from '../../shared/storage/operations.js'
import { histogramChild } from '../../shared/histogram-child.js'

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

/**
 * The project of the admin health probe's queues (proxy/api/system.ts): one no HTTP request can
 * name (a header value cannot hold a line feed), so the probe's ~100 messages per pool are told
 * apart from tenant traffic and left out of the message counters (their timings stay: they are
 * real storage operations).
 */
export const PROBE_PROJECT = '\nmissive-health-probe'

/** Wraps `driver`; `labels` (pool, worker) are added to every series. */
export function metered<T extends DataDriver>(driver: T, metrics: DriverMetrics, labels: { pool: string; worker?: string }): T {
  const base = { pool: labels.pool, worker: labels.worker ?? '' }
  const pool = { pool: labels.pool }
  const { posted, claimed, deleted } = metrics
  const counted: { [K in DriverOperation]?: (result: OpResult<K>, args: OpArgs<K>) => void } = {
    postMessages: (ids) => posted?.inc(pool, ids.length),
    createClaim: (claim) => {
      if (claim !== null) claimed?.inc(pool, claim.messages.length)
    },
    popMessages: (popped) => deleted?.inc(pool, popped.length),
    deleteMessage: () => deleted?.inc(pool, 1),
    deleteMessages: (_r, args) => deleted?.inc(pool, args[1].length),
  }
  return wrapDriver(driver, (op, call) => {
    const count = counted[op]
    // Observed once or more per request: children that skip prom-client's per-call hashing.
    const ok = histogramChild(metrics.duration, { ...base, operation: op, outcome: 'ok' })
    const err = histogramChild(metrics.duration, { ...base, operation: op, outcome: 'error' })
    // A plain .then rather than an async function: one promise per call, not three.
    return (...args) => {
      const t0 = performance.now()
      return call(...args).then(
        (result) => {
          ok.observe((performance.now() - t0) / 1000)
          if (count !== undefined && (args[0] as { project?: string } | undefined)?.project !== PROBE_PROJECT) count(result, args)
          return result
        },
        (e: unknown) => {
          err.observe((performance.now() - t0) / 1000)
          throw e
        },
      )
    }
  })
}
