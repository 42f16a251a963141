/**
 * The live-migration scenarios (issue 13; docs/migration.md), on one Missive with two Redis pools
 * (`r1`, `r2`, the shipped `fast` configuration) besides its SQLite default pool (weight 0):
 *
 * 1. **Move a big queue under traffic.** A queue on `r1` is loaded with `messages` messages
 *    (posts of 1,000), then serves an open loop of `rate` messages/s in (posts of 10) and out
 *    (claim 10, then a bulk delete of those ids), while the admin API moves it to `r2` at the
 *    default copy rate. Measured: the migration's rate (messages moved per second, as the client
 *    sees it from POST to `done`, and as the API reports it), the switch pause (source fenced →
 *    placement switched, from the migration record), and the traffic's latency per request type
 *    before (`windowS`), during, and after (`windowS`) the migration — plus the requests
 *    scheduled around the switch.
 * 2. **Drain a pool of many queues.** `drainQueues` queues of `drainMessages` messages each on
 *    `r1`; `POST /v2/admin/pools/r1/drain`; time until the drain reports done, queues and
 *    messages per second.
 *
 * Open loop as in the noisy-neighbour scenario (perf/lib/noisy.ts): each request has a scheduled
 * send time and its latency counts from then, so a pause is charged to every request it delays.
 */
import { randomUUID } from 'node:crypto'
import { HttpConnection, type HttpResponse } from './http-client.js'
import { OpStats, round, type LatencySummary } from './stats.js'

export interface MigrationBenchOptions {
  /** The service's base URL (its admin token is `adminToken`). */
  url: string
  adminToken: string
  /** Storage URIs of the two Redis pools, `r1` and `r2` (added here). */
  pools: { r1: string; r2: string }
  /** Messages in the big queue before it moves. */
  messages: number
  /** Traffic on it, messages/s each way. */
  rate: number
  /** Seconds measured before and after the migration. */
  windowS: number
  drainQueues: number
  drainMessages: number
  log: (msg: string) => void
}

type Phase = 'before' | 'during' | 'switch' | 'after'

export interface MigrationBenchResult {
  load: { messages: number; seconds: number; perSecond: number }
  migration: {
    state: string
    messages: number
    seconds: number
    /** Messages moved per second, POST → done as the client saw it. */
    perSecond: number
    /** The API's `messages_per_second`. */
    apiPerSecond: number
    /** Source fenced → placement switched, ms (the migration record's `pause_ms`). */
    pauseMs: number | null
  }
  /** Traffic latency per phase and request type. `switch`: requests scheduled within 250 ms of the switch. */
  traffic: Record<Phase, Record<string, LatencySummary>>
  /** Seconds of each phase. */
  phaseSeconds: Record<Phase, number>
  drain: { queues: number; messages: number; seconds: number; queuesPerSecond: number; messagesPerSecond: number; done: boolean }
}

const PROJECT = 'bench-migration'

function head(method: string, path: string, clientId: string, host: string, json: boolean, admin?: string): string {
  return (
    `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nClient-ID: ${clientId}\r\nX-Project-ID: ${PROJECT}` +
    (admin !== undefined ? `\r\nX-Auth-Token: ${admin}` : '') +
    (json ? '\r\nContent-Type: application/json' : '')
  )
}

/** `n` messages of about 100 bytes of JSON each. */
function batch(n: number): Buffer {
  const one = JSON.stringify({ ttl: 3600, body: { event: 'migration-bench', pad: 'x'.repeat(48) } })
  return Buffer.from(`{"messages":[${new Array<string>(n).fill(one).join(',')}]}`)
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

export async function runMigrationBench(o: MigrationBenchOptions): Promise<MigrationBenchResult> {
  const u = new URL(o.url)
  const host = u.host
  const conn = (timeoutMs = 60_000): HttpConnection => new HttpConnection(u.hostname, Number(u.port), timeoutMs)
  const clientId = randomUUID()
  const admin = conn()
  const must = async (r: Promise<HttpResponse>, what: string, ok: number[]): Promise<HttpResponse> => {
    const res = await r
    if (!ok.includes(res.status)) throw new Error(`migration bench: ${what} answered ${res.status}: ${res.body.toString().slice(0, 300)}`)
    return res
  }
  const adminJson = async (method: string, path: string, body: unknown, ok: number[]): Promise<Record<string, unknown>> => {
    const res = await must(
      admin.request(head(method, path, clientId, host, body !== undefined, o.adminToken), body === undefined ? undefined : Buffer.from(JSON.stringify(body))),
      `${method} ${path}`,
      ok,
    )
    return res.body.length === 0 ? {} : (JSON.parse(res.body.toString()) as Record<string, unknown>)
  }
  const weights = async (w: Record<string, number>): Promise<void> => {
    for (const [pool, weight] of Object.entries(w)) await adminJson('PATCH', `/v2/pools/${pool}`, { weight }, [200])
  }

  // --- 1. the big queue -----------------------------------------------------------------------
  await adminJson('PUT', '/v2/pools/r1', { uri: o.pools.r1, weight: 1 }, [201])
  await adminJson('PUT', '/v2/pools/r2', { uri: o.pools.r2, weight: 0 }, [201])
  await weights({ default: 0 })
  const setup = conn(120_000)
  // 503 until the supervisor has the new pools' workers up.
  for (let until = performance.now() + 30_000; ; await sleep(100)) {
    const r = await setup.request(head('PUT', '/v2/queues/big', clientId, host, true), Buffer.from('{}'))
    if (r.status === 201 || r.status === 204) break
    if (r.status !== 503 || performance.now() > until) throw new Error(`migration bench: create big answered ${r.status}: ${r.body.toString().slice(0, 300)}`)
  }
  setup.close()
  o.log(`migration: loading ${o.messages.toLocaleString('en-US')} messages into r1 …`)
  const thousand = batch(1000)
  const t0 = performance.now()
  let loaded = 0
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      const c = conn(120_000)
      while (loaded < o.messages) {
        loaded += 1000
        await must(c.request(head('POST', '/v2/queues/big/messages', clientId, host, true), thousand), 'load post', [201])
      }
      c.close()
    }),
  )
  const loadS = (performance.now() - t0) / 1000
  o.log(`migration: loaded in ${loadS.toFixed(1)} s`)
  await weights({ r2: 1 })

  // The open loop, recorded by phase of scheduled time.
  const stats: Record<Phase, Map<string, OpStats>> = { before: new Map(), during: new Map(), switch: new Map(), after: new Map() }
  let phase: Phase = 'before'
  /** [from, to] of scheduled times that count as "around the switch" (set once it is seen). */
  let switchFrom = Infinity
  let switchTo = Infinity
  const record = (p: Phase, at: number, name: string, ms: number, ok: boolean, status: number | string): void => {
    const put = (ph: Phase): void => {
      let s = stats[ph].get(name)
      if (s === undefined) stats[ph].set(name, (s = new OpStats()))
      s.record(ms * 1000, ok, status)
    }
    put(p)
    if (at >= switchFrom && at <= switchTo) put('switch')
  }
  const timed = async (name: string, at: number, r: Promise<HttpResponse>, ok: number[]): Promise<HttpResponse | null> => {
    const p = phase
    try {
      const res = await r
      record(p, at, name, performance.now() - at, ok.includes(res.status), res.status)
      return res
    } catch {
      record(p, at, name, performance.now() - at, false, 'error')
      return null
    }
  }
  const idle: HttpConnection[] = []
  const all: HttpConnection[] = []
  const inflight = new Set<Promise<void>>()
  const send = (fn: (c: HttpConnection) => Promise<void>): void => {
    const c = idle.pop() ?? (all.push(conn()), all[all.length - 1]!)
    const p = fn(c).finally(() => {
      idle.push(c)
      inflight.delete(p)
    })
    inflight.add(p)
  }
  const ten = batch(10)
  const claimBody = Buffer.from('{"ttl":60,"grace":60}')
  const post = (at: number) => (c: HttpConnection) =>
    timed('post10', at, c.request(head('POST', '/v2/queues/big/messages', clientId, host, true), ten), [201]).then(() => undefined)
  const consume = (at: number) => async (c: HttpConnection) => {
    const res = await timed('claim10', at, c.request(head('POST', '/v2/queues/big/claims?limit=10', clientId, host, true), claimBody), [201, 204])
    if (res === null || res.status !== 201) return
    const ids = (JSON.parse(res.body.toString()) as { messages: { href: string }[] }).messages.map((m) => m.href.slice(m.href.lastIndexOf('/') + 1).split('?')[0])
    await timed('delete10', performance.now(), c.request(head('DELETE', `/v2/queues/big/messages?ids=${ids.join(',')}`, clientId, host, false)), [204])
  }
  let running = true
  const loop = (async () => {
    const start = performance.now()
    const interval = 1000 / (o.rate / 10)
    for (let k = 0; running; k++) {
      const at = start + k * interval
      const wait = at - performance.now()
      if (wait > 1) await sleep(wait)
      send(post(at))
      send(consume(at))
    }
  })()

  const phaseStart: Record<Phase, number> = { before: performance.now(), during: 0, switch: 0, after: 0 }
  o.log(`migration: traffic ${o.rate} msgs/s in and out; ${o.windowS} s before …`)
  await sleep(o.windowS * 1000)
  phase = 'during'
  phaseStart.during = performance.now()
  const created = await adminJson('POST', '/v2/admin/migrations', { project: PROJECT, queue: 'big', to_pool: 'r2' }, [202])
  const id = String(created.id)
  o.log(`migration: ${id} started …`)
  let m: Record<string, unknown> = created
  let switchSeen = 0
  for (;;) {
    await sleep(50)
    m = await adminJson('GET', `/v2/admin/migrations/${id}`, undefined, [200])
    const state = String(m.state)
    if (switchSeen === 0 && state !== 'copying') {
      switchSeen = performance.now()
      switchFrom = switchSeen - 250 - 50
    }
    if (state === 'cleaning' || state === 'done' || state === 'cancelled' || state === 'failed') {
      if (switchTo === Infinity) switchTo = performance.now() + 250
    }
    if (state === 'done' || state === 'cancelled' || state === 'failed') break
  }
  const migrationS = (performance.now() - phaseStart.during) / 1000
  o.log(`migration: ${String(m.state)} after ${migrationS.toFixed(1)} s (${String(m.messages_copied)} copied, pause ${String(m.pause_ms)} ms); ${o.windowS} s after …`)
  phase = 'after'
  phaseStart.after = performance.now()
  await sleep(o.windowS * 1000)
  running = false
  await loop
  await Promise.allSettled([...inflight])
  for (const c of all) c.close()
  const summarize = (p: Phase, seconds: number): Record<string, LatencySummary> =>
    Object.fromEntries([...stats[p]].map(([name, s]) => [name, s.summary(Math.max(seconds, 0.001))]))
  const phaseSeconds: Record<Phase, number> = {
    before: round(o.windowS, 1),
    during: round(migrationS, 1),
    switch: round(switchTo === Infinity || switchFrom === Infinity ? 0 : (switchTo - switchFrom) / 1000, 2),
    after: round(o.windowS, 1),
  }

  // --- 2. drain a pool of many queues ---------------------------------------------------------
  o.log(`drain: ${o.drainQueues} queues of ${o.drainMessages} messages on r1 …`)
  await weights({ r1: 1, r2: 0 })
  const small = batch(o.drainMessages)
  let q = 0
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      const c = conn(120_000)
      while (q < o.drainQueues) {
        const name = `drain-${q++}`
        await must(c.request(head('POST', `/v2/queues/${name}/messages`, clientId, host, true), small), 'drain fill', [201])
      }
      c.close()
    }),
  )
  await weights({ r2: 1 })
  const d0 = performance.now()
  await adminJson('POST', '/v2/admin/pools/r1/drain', {}, [202])
  let drain: Record<string, unknown> = {}
  for (let until = d0 + 600_000; performance.now() < until; ) {
    await sleep(200)
    drain = await adminJson('GET', '/v2/admin/pools/r1/drain', undefined, [200])
    if (drain.done === true) break
  }
  const drainS = (performance.now() - d0) / 1000
  o.log(`drain: ${drain.done === true ? 'done' : 'NOT done'} in ${drainS.toFixed(1)} s`)
  admin.close()

  const moved = Number(m.messages_copied ?? 0)
  return {
    load: { messages: o.messages, seconds: round(loadS, 1), perSecond: Math.round(o.messages / loadS) },
    migration: {
      state: String(m.state),
      messages: moved,
      seconds: round(migrationS, 1),
      perSecond: Math.round(moved / migrationS),
      apiPerSecond: Number(m.messages_per_second ?? 0),
      pauseMs: m.pause_ms === null || m.pause_ms === undefined ? null : Number(m.pause_ms),
    },
    traffic: { before: summarize('before', phaseSeconds.before), during: summarize('during', phaseSeconds.during), switch: summarize('switch', phaseSeconds.switch), after: summarize('after', phaseSeconds.after) },
    phaseSeconds,
    drain: {
      queues: o.drainQueues,
      messages: o.drainQueues * o.drainMessages,
      seconds: round(drainS, 1),
      queuesPerSecond: round(o.drainQueues / drainS, 1),
      messagesPerSecond: Math.round((o.drainQueues * o.drainMessages) / drainS),
      done: drain.done === true,
    },
  }
}

/** The result as Markdown. */
export function migrationMarkdown(r: MigrationBenchResult, rate: number): string {
  const rows: string[] = []
  for (const p of ['before', 'during', 'switch', 'after'] as Phase[]) {
    for (const [name, s] of Object.entries(r.traffic[p])) {
      rows.push(`| ${p} (${r.phaseSeconds[p]} s) | ${name} | ${s.count} | ${s.p50} | ${s.p99} | ${s.max} | ${Object.entries(s.failures).map(([k, v]) => `${k}×${v}`).join(' ') || '—'} |`)
    }
  }
  return [
    '### Live migration — Redis → Redis',
    '',
    `A queue of ${r.load.messages.toLocaleString('en-US')} messages (~100 bytes; loaded at ${r.load.perSecond.toLocaleString('en-US')}/s) moved from pool r1 to r2 while serving ${rate} msgs/s in (posts of 10) and out (claim 10 + bulk delete), open loop.`,
    '',
    `- Migration: **${r.migration.state}**, ${r.migration.messages.toLocaleString('en-US')} messages in ${r.migration.seconds} s = **${r.migration.perSecond.toLocaleString('en-US')} msgs/s** (API: ${r.migration.apiPerSecond}/s)`,
    `- Switch pause (source fenced → placement switched): **${r.migration.pauseMs ?? '?'} ms**`,
    `- Drain of pool r1 with ${r.drain.queues.toLocaleString('en-US')} queues (${r.drain.messages.toLocaleString('en-US')} messages): **${r.drain.done ? 'done' : 'not done'} in ${r.drain.seconds} s** = ${r.drain.queuesPerSecond} queues/s, ${r.drain.messagesPerSecond.toLocaleString('en-US')} msgs/s`,
    '',
    '| phase | request | count | p50 ms | p99 ms | max ms | failures |',
    '|---|---|---:|---:|---:|---:|---|',
    ...rows,
    '',
  ].join('\n')
}
