/**
 * The supervisor's own metrics: its children's state, restarts and hung kills, and Node's process
 * metrics of the supervisor itself, all labelled `process="supervisor"`. The supervisor serves no
 * HTTP: the proxy asks for them over IPC at scrape time (`metrics-request` → `supervisor-metrics`)
 * and merges them into the one /metrics page (proxy/metrics.ts).
 */
import { Counter, Gauge } from 'prom-client'
import { processRegistry } from '../shared/metrics.js'
import type { ManagedChild } from './child.js'

/** The proxy's request, and the supervisor's answer (`json`: `Registry.getMetricsAsJSON()`). */
export interface MetricsRequest {
  type: 'metrics-request'
  id: number
}
export interface MetricsAnswer {
  type: 'supervisor-metrics'
  id: number
  json: unknown
}

export const isMetricsRequest = (m: unknown): m is MetricsRequest =>
  typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'metrics-request' && typeof (m as { id?: unknown }).id === 'number'

/**
 * The supervisor's registry. `children()` lists the managed children at scrape time (pools come
 * and go): each is a `child` label value, bounded by the pools' worker counts.
 */
export function supervisorRegistry(children: () => ManagedChild[]) {
  const registry = processRegistry('supervisor')
  const registers = [registry]
  /** Counters mirrored from the children's plain counts at scrape time, per child. */
  const mirror = (name: string, help: string, read: (c: ManagedChild) => number): void => {
    const seen = new Map<string, number>()
    const counter: Counter<'child'> = new Counter({
      name,
      help,
      labelNames: ['child'],
      registers,
      collect() {
        for (const c of children()) {
          const v = read(c)
          const before = seen.get(c.role)
          if (before === undefined) counter.inc({ child: c.role }, v)
          else if (v > before) counter.inc({ child: c.role }, v - before)
          seen.set(c.role, Math.max(v, before ?? 0))
        }
      },
    })
  }
  mirror('missive_supervisor_child_restarts_total', 'Child processes restarted by the supervisor after a crash (or a hung kill).', (c) => c.restarts)
  mirror('missive_supervisor_child_hung_kills_total', 'Children SIGKILLed by the supervisor for not answering heartbeats.', (c) => c.hungKills)
  new Gauge({
    name: 'missive_supervisor_child_up',
    help: '1 while the child runs and has said it is ready; 0 while it is down or restarting.',
    labelNames: ['child'],
    registers,
    collect() {
      this.reset()
      for (const c of children()) this.set({ child: c.role }, c.up ? 1 : 0)
    },
  })
  return registry
}
