/**
 * Latency recording in HDR histograms (hdr-histogram-js), microsecond resolution, one histogram
 * per request type, plus counters for messages in and out.
 */
import * as hdr from 'hdr-histogram-js'

export interface LatencySummary {
  count: number
  /** Completed requests per second over the measured window. */
  rps: number
  /** Milliseconds. */
  mean: number
  p50: number
  p90: number
  p99: number
  p999: number
  max: number
  /** Responses that were not the expected 2xx, by status ("error" for transport failures). */
  failures: Record<string, number>
}

export function newHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 })
}

export class OpStats {
  readonly hist = newHistogram()
  count = 0
  readonly failures = new Map<string, number>()

  /** `us` is the latency in microseconds; `ok` false counts a failure under `status`. */
  record(us: number, ok: boolean, status: number | string): void {
    this.hist.recordValue(Math.max(1, Math.round(us)))
    this.count++
    if (!ok) this.failures.set(String(status), (this.failures.get(String(status)) ?? 0) + 1)
  }

  summary(seconds: number): LatencySummary {
    const h = this.hist
    const ms = (v: number): number => Math.round(v) / 1000
    return {
      count: this.count,
      rps: round(this.count / seconds, 1),
      mean: this.count ? ms(h.mean) : 0,
      p50: this.count ? ms(h.getValueAtPercentile(50)) : 0,
      p90: this.count ? ms(h.getValueAtPercentile(90)) : 0,
      p99: this.count ? ms(h.getValueAtPercentile(99)) : 0,
      p999: this.count ? ms(h.getValueAtPercentile(99.9)) : 0,
      max: this.count ? ms(h.maxValue) : 0,
      failures: Object.fromEntries(this.failures),
    }
  }
}

export class Recorder {
  readonly ops = new Map<string, OpStats>()
  msgsIn = 0
  msgsOut = 0
  emptyClaims = 0
  /** Open loop: arrivals never sent because the run ended with them still queued in the client. */
  unsent = 0

  op(name: string): OpStats {
    let s = this.ops.get(name)
    if (s === undefined) {
      s = new OpStats()
      this.ops.set(name, s)
    }
    return s
  }
}

export function round(v: number, digits = 2): number {
  const f = 10 ** digits
  return Math.round(v * f) / f
}
