/**
 * Prometheus helpers shared by every process. Each process declares its own metrics in one file
 * (proxy/metrics.ts, worker/metrics.ts, supervisor/metrics.ts) on a registry labelled with the
 * process it runs in; the proxy merges every process's registry into the one /metrics page.
 */
import { AggregatorRegistry, collectDefaultMetrics, Registry } from 'prom-client'

/** Latency buckets, seconds: fine from 0.1 ms to 50 ms (the 10 ms target sits in the middle). */
export const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5]

/** A registry whose every series carries `process` (proxy, worker-0, supervisor), with the
 *  process and event-loop metrics of Node under the `missive_` prefix. */
export function processRegistry(processName: string): Registry {
  const registry = new Registry()
  registry.setDefaultLabels({ process: processName })
  collectDefaultMetrics({ register: registry, prefix: 'missive_', eventLoopMonitoringPrecision: 20 })
  // Gauges that prom-client names like counters; promtool (rightly) rejects the names.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(`missive_${name}`)
  }
  return registry
}

/** What `Registry.getMetricsAsJSON()` gives: it crosses process boundaries as plain data. */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>

/** One exposition from the registries of several processes. Series with the same name and
 *  labels are summed; every series carries its `process` label, so none collide. */
export async function exposition(parts: MetricsJson[]): Promise<string> {
  return AggregatorRegistry.aggregate(parts).metrics()
}

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
