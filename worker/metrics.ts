/** The worker process's metrics (one file per process, per the house style). */
import { Counter, Histogram } from 'prom-client'
import { LATENCY_BUCKETS, processRegistry } from '../shared/metrics.js'
import type { DataDriver } from '../shared/storage/contract.js'
import type { DriverMetrics } from './storage/metered.js'

export function workerMetrics(processName: string): { registry: ReturnType<typeof processRegistry>; driver: DriverMetrics } {
  const registry = processRegistry(processName)
  const driver: DriverMetrics = {
    duration: new Histogram({
      name: 'missive_storage_operation_duration_seconds',
      help: 'Time a storage operation takes inside the worker, by pool and operation.',
      labelNames: ['pool', 'worker', 'operation', 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    posted: new Counter({
      name: 'missive_messages_posted_total',
      help: 'Messages stored by successful posts.',
      labelNames: ['pool'],
      registers: [registry],
    }),
    claimed: new Counter({
      name: 'missive_messages_claimed_total',
      help: 'Messages handed out by successful claims.',
      labelNames: ['pool'],
      registers: [registry],
    }),
    deleted: new Counter({
      name: 'missive_messages_deleted_total',
      help: 'Messages named by successful deletes (single and bulk) and popped.',
      labelNames: ['pool'],
      registers: [registry],
    }),
  }
  return { registry, driver }
}

/**
 * `missive_messages_dead_lettered_total{pool}`: messages the store moved to a dead-letter queue
 * of the same pool at claim time, read from the driver's own count at scrape time (the claim path
 * only adds to a number). The proxy counts the moves it makes across pools under the same name.
 */
export function deadLetteredCounter(registry: ReturnType<typeof processRegistry>, pool: string, read: () => number): Counter<'pool'> {
  let seen = 0
  const counter: Counter<'pool'> = new Counter({
    name: DEAD_LETTERED,
    help: DEAD_LETTERED_HELP,
    labelNames: ['pool'],
    registers: [registry],
    collect() {
      const v = read()
      counter.inc({ pool }, v > seen ? v - seen : 0)
      seen = Math.max(seen, v)
    },
  })
  counter.inc({ pool }, 0)
  return counter
}

/** The dead-letter counter's name and help, shared by the worker and the proxy. */
export const DEAD_LETTERED = 'missive_messages_dead_lettered_total'
export const DEAD_LETTERED_HELP = 'Messages moved to a dead-letter queue (claimed _max_claim_count times), by the pool of the queue they left.'

/** The driver's own dead-letter count (0 for drivers that keep none). */
export const deadLetteredOf = (driver: DataDriver): number => driver.deadLettered ?? 0
