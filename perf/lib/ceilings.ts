/**
 * The ceilings every number is compared to, measured in the same run on the same machine:
 * a uWS hello-world (through our own load engine, through autocannon, and through wrk when
 * installed) and raw Redis pipelined writes (ioredis, and redis-benchmark when installed).
 */
import autocannon from 'autocannon'
import { Redis } from 'ioredis'
import { performance } from 'node:perf_hooks'
import { runLoad, type LoadOptions, type LoadResult } from './load.js'
import { hasBinary, runTool } from './procs.js'
import { round } from './stats.js'
import { messagesBody } from './zaqar.js'
import { randomUUID } from 'node:crypto'

export interface ThroughputCeiling {
  tool: string
  reqPerS: number
  p50?: number
  p99?: number
  note?: string
}

/** Our engine against the hello-world: its own per-request overhead shows here. */
/** Load options that only send `GET /`: the engine against a hello-world. */
function helloLoad(url: string, connections: number, durationS: number, rate: number): LoadOptions {
  return {
    url,
    producers: 0,
    consumers: 0,
    observers: 0,
    hello: connections,
    batch: 1,
    claimLimit: 1,
    deleteMode: 'bulk',
    size: 0,
    queues: 1,
    tenants: 1,
    durationS,
    rate,
    connections,
  }
}

export async function engineHello(url: string, connections: number, durationS: number): Promise<LoadResult> {
  return runLoad(helloLoad(url, connections, durationS, 0))
}

/**
 * The open-loop latency floor: the uWS hello-world offered `reqPerS` requests/s on a fixed
 * schedule by the same engine, pool size and clock as the open-loop scenarios, after `warmS`
 * unrecorded seconds at that rate. A Missive percentile next to this one shows what the service
 * adds; the floor itself shows what the machine (scheduler, other tenants, the load generator)
 * costs at that rate.
 */
export async function engineHelloOpen(url: string, reqPerS: number, connections: number, durationS: number, warmS: number): Promise<LoadResult> {
  if (warmS > 0) await runLoad({ ...helloLoad(url, connections, warmS, reqPerS), drainMs: 1000 })
  return runLoad(helloLoad(url, connections, durationS, reqPerS))
}

export async function autocannonRun(opts: {
  url: string
  connections: number
  durationS: number
  method?: string
  paths?: string[]
  headers?: Record<string, string>
  body?: Buffer
}): Promise<ThroughputCeiling & { non2xx: number; errors: number; p90: number; max: number }> {
  let i = 0
  const paths = opts.paths ?? ['/']
  const r = await autocannon({
    url: opts.url,
    connections: opts.connections,
    duration: opts.durationS,
    headers: opts.headers,
    requests: [
      {
        method: opts.method ?? 'GET',
        body: opts.body,
        setupRequest: (req) => ({ ...req, path: paths[i++ % paths.length] }),
      },
    ],
  })
  return {
    tool: 'autocannon',
    reqPerS: round(r.requests.total / r.duration, 1),
    p50: r.latency.p50,
    p90: r.latency.p90,
    p99: r.latency.p99,
    max: r.latency.max,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
  }
}

/** Autocannon posting to Missive: a cross-check of the engine on a fixed-request scenario. */
export function autocannonPost(url: string, o: { connections: number; durationS: number; batch: number; size: number; queues: number; tenants: number }) {
  // autocannon sends one header set for all connections: one tenant, queues rotated.
  const paths = Array.from({ length: Math.min(o.queues, 10_000) }, (_, i) => `/v2/queues/bench-q${i}/messages`)
  return autocannonRun({
    url,
    connections: o.connections,
    durationS: o.durationS,
    method: 'POST',
    paths,
    headers: { 'Client-ID': randomUUID(), 'X-Project-ID': 'bench-t0', 'Content-Type': 'application/json' },
    body: messagesBody(o.batch, o.size),
  })
}

export async function wrkHello(url: string, connections: number, durationS: number): Promise<ThroughputCeiling | null> {
  if (!hasBinary('wrk', ['--version']) && !hasBinary('which', ['wrk'])) return null
  const r = await runTool('wrk', ['-t1', `-c${connections}`, `-d${Math.max(1, Math.round(durationS))}s`, '--latency', `${url}/`], (durationS + 15) * 1000)
  const m = /Requests\/sec:\s*([\d.]+)/.exec(r.stdout)
  if (!m) return null
  const pct = (p: string): number | undefined => {
    const mm = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(r.stdout)
    if (!mm) return undefined
    const v = Number(mm[1])
    return round(mm[2] === 'us' ? v / 1000 : mm[2] === 's' ? v * 1000 : v, 3)
  }
  return { tool: 'wrk (1 thread)', reqPerS: round(Number(m[1]), 1), p50: pct('50'), p99: pct('99') }
}

export interface RedisCeiling {
  tool: string
  /** Writes (SET of a message-sized value) per second. */
  writesPerS: number
  pipeline: number
  note?: string
}

/** ioredis: `inflight` pipelines of `pipeline` SETs of `size`-byte values, back to back. */
export async function redisPipelined(url: string, durationS: number, pipeline = 100, inflight = 8, size = 200): Promise<RedisCeiling> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  await redis.connect()
  const value = 'x'.repeat(size)
  let writes = 0
  let seq = 0
  const start = performance.now()
  const deadline = start + durationS * 1000
  try {
    await Promise.all(
      Array.from({ length: inflight }, async () => {
        while (performance.now() < deadline) {
          const p = redis.pipeline()
          for (let i = 0; i < pipeline; i++) p.set(`ceiling:${seq++ % 100_000}`, value)
          await p.exec()
          writes += pipeline
        }
      }),
    )
    await redis.flushdb()
  } finally {
    redis.disconnect()
  }
  return { tool: `ioredis pipelined SET, ${inflight} pipelines in flight`, writesPerS: round(writes / ((performance.now() - start) / 1000), 0), pipeline }
}

export async function redisBenchmark(port: number, requests: number, size = 200): Promise<RedisCeiling | null> {
  if (!hasBinary('redis-benchmark', ['--version'])) return null
  const r = await runTool('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '-t', 'set', '-P', '16', '-d', String(size), '-n', String(requests), '-c', '16', '-q'], 60_000)
  const m = /SET:\s*([\d.]+)\s*requests per second/.exec(r.stdout.replace(/\r/g, '\n'))
  if (!m) return null
  return { tool: 'redis-benchmark SET -P 16 -c 16', writesPerS: round(Number(m[1]), 0), pipeline: 16 }
}
