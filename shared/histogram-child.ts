/**
 * A labelled histogram child that observes without prom-client's per-call work.
 *
 * prom-client's `histogram.labels(...).observe(v)` validates the label names, builds the series'
 * hash string from the sorted labels and looks it up on every call: ~0.5 µs, and the request
 * path observes up to three times per request (the proxy's request histogram, the proxy's and
 * the worker's RPC timings, worker/storage/metered.ts). The child returned here finds its series
 * once and then adds to it directly: the same state, so `/metrics` reads exactly what the
 * library's child would have produced.
 */
import type { Histogram } from 'prom-client'

/** One series of a prom-client histogram (lib/histogram.js `createBaseValues`). */
interface Series {
  labels: object
  bucketValues: Record<number, number>
  sum: number
  count: number
}

/** The histogram internals relied on (private in prom-client's types). */
interface HistogramInternals {
  hashMap: Record<string, Series>
  upperBounds: number[]
  enableExemplars: boolean
}

/** What the request path calls. */
export interface Observer {
  observe(value: number): void
}

/**
 * The child of `histogram` for `labels` (every label name given, as `histogram.labels` wants).
 * Anything unusual — the series not created yet or dropped by `reset()`, a value that is not a
 * finite number, exemplars on, a prom-client without these internals — goes through the
 * library's own child, which creates the series, validates and throws as it always does.
 */
export function histogramChild<T extends string>(histogram: Histogram<T>, labels: Partial<Record<T, string | number>>): Observer {
  const child = histogram.labels(labels)
  const h = histogram as unknown as Partial<HistogramInternals>
  if (h.enableExemplars !== false || typeof h.hashMap !== 'object' || h.hashMap === null || !Array.isArray(h.upperBounds)) return child
  const internals = h as HistogramInternals
  const bounds = internals.upperBounds
  let key: string | undefined
  return {
    observe(value: number): void {
      // Read the map on every call: `reset()` replaces it.
      const series = key === undefined ? undefined : internals.hashMap[key]
      if (series === undefined || series.labels !== labels || !Number.isFinite(value)) {
        child.observe(value)
        // The library keeps the labels object it was given as the series' labels.
        key = undefined
        for (const k in internals.hashMap) {
          if (internals.hashMap[k]!.labels === labels) {
            key = k
            break
          }
        }
        return
      }
      series.sum += value
      series.count += 1
      // As the library: the first bound at or above the value; above every bound, count only.
      for (let i = 0; i < bounds.length; i++) {
        if (value <= bounds[i]!) {
          series.bucketValues[bounds[i]!]! += 1
          break
        }
      }
    },
  }
}
