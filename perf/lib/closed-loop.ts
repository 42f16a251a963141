/**
 * A store-level closed loop (perf/redis-driver.ts, perf/cluster.ts): `op` called back to back by
 * `concurrency` callers for `seconds`, each call moving the messages it returns.
 */

export interface LoopResult {
  /** Messages per second over the time the loops actually ran. */
  rate: number
  /** Call latency percentiles (ms). */
  p50: number
  p99: number
}

const pct = (sorted: number[], p: number): number => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!)

/** Runs `op(i)` (i: the caller) in closed loops; a caller whose call moved nothing stops (a drained queue). */
export async function closedLoop(concurrency: number, seconds: number, op: (i: number) => Promise<number>): Promise<LoopResult> {
  const lat: number[] = []
  let moved = 0
  const start = performance.now()
  const end = start + seconds * 1000
  await Promise.all(
    Array.from({ length: concurrency }, async (_, i) => {
      while (performance.now() < end) {
        const s = performance.now()
        const n = await op(i)
        lat.push(performance.now() - s)
        moved += n
        if (n === 0) return
      }
    }),
  )
  // A consumer that drains the queue stops early: the rate is over the time actually used.
  const elapsed = (performance.now() - start) / 1000
  lat.sort((a, b) => a - b)
  return { rate: moved / elapsed, p50: pct(lat, 50), p99: pct(lat, 99) }
}

/** One line for a report: rate and latency percentiles. */
export const formatLoop = (r: LoopResult): string => `${Math.round(r.rate).toString().padStart(7)} msg/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms`
