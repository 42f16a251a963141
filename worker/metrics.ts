/** The worker process's metrics (one file per process, per the house style). */
import { Counter, Histogram } from 'prom-client'
import { LATENCY_BUCKETS, processRegistry } from '../shared/metrics.js'
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
