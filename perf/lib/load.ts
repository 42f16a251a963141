/**
 * The load engine. Closed loop: each connection sends its next request as soon as the previous
 * one answered (maximum throughput). Open loop: requests arrive on a fixed schedule whatever the
 * server does, and each latency is measured from the request's *intended* send time, so time a
 * request spent queued in the client behind a slow server counts (coordinated omission
 * corrected). Consumers chain requests: a claim, then a delete of what the claim returned — a
 * reaction to a claim is scheduled when the claim answers.
 */
import { performance } from 'node:perf_hooks'
import { HttpConnection } from './http-client.js'
import { Recorder, round, type LatencySummary } from './stats.js'
import { claimedMessages, targets, ZaqarRequests, type Target } from './zaqar.js'

export interface LoadOptions {
  /** Base URL of the service, e.g. http://127.0.0.1:8888 */
  url: string
  /** Closed loop: producer connections. Open loop: whether to produce (> 0). */
  producers: number
  /** Closed loop: consumer connections. Open loop: whether to consume (> 0). */
  consumers: number
  /** Closed loop only: observer connections (list messages). */
  observers: number
  /**
   * Connections sending `GET /` (the engine's own ceiling against a hello-world). Open loop:
   * whether to send them, at `rate` requests/s — the latency floor of this machine and engine.
   */
  hello?: number
  /** Messages per POST. */
  batch: number
  /** Messages per claim (`?limit=`). */
  claimLimit: number
  /** After a claim: one bulk `DELETE ?ids=` or one `DELETE <href>` per message. */
  deleteMode: 'bulk' | 'single'
  /** Approximate JSON size of one message, bytes. */
  size: number
  queues: number
  tenants: number
  durationS: number
  /** Messages per second each way (open loop); 0 = closed loop. */
  rate: number
  /** Open loop: size of the connection pool shared by all arrivals. */
  connections: number
  /** Observers' page size. */
  listLimit?: number
  /** Queue and project name prefix. */
  prefix?: string
  timeoutMs?: number
  /** Open loop: how long to wait for requests in flight once the schedule ends. */
  drainMs?: number
}

/**
 * The bench's standard closed-loop load against `url` (no clients yet: set producers or
 * consumers), with `over` on top: batches of 10, claims of 10 and bulk deletes, 200-byte bodies,
 * 4 queues of one tenant.
 */
export function standardLoad(url: string, durationS: number, connections: number, over: Partial<LoadOptions> = {}): LoadOptions {
  return {
    url,
    producers: 0,
    consumers: 0,
    observers: 0,
    batch: 10,
    claimLimit: 10,
    deleteMode: 'bulk',
    size: 200,
    queues: 4,
    tenants: 1,
    durationS,
    rate: 0,
    connections,
    prefix: 'bench',
    ...over,
  }
}

/**
 * Requests/s of an open-loop mixed run at `rate` messages/s each way: posts of `batch`, claims of
 * `claimLimit`, and one bulk delete per claim.
 */
export function openRequestRate(rate: number, batch: number, claimLimit: number): number {
  return rate / batch + (2 * rate) / claimLimit
}

export interface LoadResult {
  mode: 'closed' | 'open'
  seconds: number
  /** Open loop: messages/s offered each way. */
  offered: number | null
  msgsInPerS: number
  msgsOutPerS: number
  reqPerS: number
  emptyClaims: number
  unsent: number
  failures: number
  ops: Record<string, LatencySummary>
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

function summarize(rec: Recorder, mode: 'closed' | 'open', seconds: number, offered: number | null): LoadResult {
  const ops: Record<string, LatencySummary> = {}
  let reqs = 0
  let failures = 0
  for (const [name, s] of rec.ops) {
    ops[name] = s.summary(seconds)
    reqs += s.count
    for (const n of s.failures.values()) failures += n
  }
  return {
    mode,
    seconds: round(seconds, 3),
    offered,
    msgsInPerS: round(rec.msgsIn / seconds, 1),
    msgsOutPerS: round(rec.msgsOut / seconds, 1),
    reqPerS: round(reqs / seconds, 1),
    emptyClaims: rec.emptyClaims,
    unsent: rec.unsent,
    failures,
    ops,
  }
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  return o.rate > 0 ? runOpen(o) : runClosed(o)
}

function endpoint(url: string): { host: string; port: number; hostHeader: string } {
  const u = new URL(url)
  return { host: u.hostname, port: Number(u.port || 80), hostHeader: u.host }
}

async function runClosed(o: LoadOptions): Promise<LoadResult> {
  const { host, port, hostHeader } = endpoint(o.url)
  const tg = targets(o.queues, o.tenants, o.prefix)
  const rec = new Recorder()
  const conns: HttpConnection[] = []
  const loops: Promise<void>[] = []
  const start = performance.now()
  const deadline = start + o.durationS * 1000
  const listLimit = o.listLimit ?? 10

  const spawnLoops = (n: number, body: (c: HttpConnection, z: ZaqarRequests, k: number, stride: number) => Promise<void>): void => {
    for (let k = 0; k < n; k++) {
      const c = new HttpConnection(host, port, o.timeoutMs)
      conns.push(c)
      loops.push(body(c, new ZaqarRequests(hostHeader, o.batch, o.size), k, n))
    }
  }

  // A transport error is recorded, then the loop backs off briefly (it reconnects on the next request).
  const timed = async (c: HttpConnection, op: string, head: string, body: Buffer | undefined, okStatus: number[]) => {
    const t0 = performance.now()
    try {
      const r = await c.request(head, body)
      const ok = okStatus.includes(r.status)
      rec.op(op).record((performance.now() - t0) * 1000, ok, r.status)
      return ok ? r : null
    } catch (err) {
      if (process.env.PERF_DEBUG) console.error(op, (err as Error).message)
      rec.op(op).record((performance.now() - t0) * 1000, false, 'error')
      await sleep(10)
      return null
    }
  }

  spawnLoops(o.producers, async (c, z, k, stride) => {
    for (let i = k; performance.now() < deadline; i += stride) {
      const [head, body] = z.post(tg[i % tg.length])
      if (await timed(c, 'post', head, body, [201])) rec.msgsIn += o.batch
    }
  })
  spawnLoops(o.consumers, async (c, z, k, stride) => {
    for (let i = k; performance.now() < deadline; i += stride) {
      const t = tg[i % tg.length]
      const [head, body] = z.claim(t, o.claimLimit)
      const r = await timed(c, 'claim', head, body, [201, 204])
      if (r === null) continue
      if (r.status === 204) {
        rec.emptyClaims++
        continue
      }
      const msgs = claimedMessages(r.body)
      if (o.deleteMode === 'bulk') {
        if (await timed(c, 'delete', z.deleteIds(t, msgs.map((m) => m.id)), undefined, [204])) rec.msgsOut += msgs.length
      } else {
        for (const m of msgs) {
          if (await timed(c, 'delete1', z.deleteHref(t, m.href), undefined, [204])) rec.msgsOut++
        }
      }
    }
  })
  spawnLoops(o.observers, async (c, z, k, stride) => {
    for (let i = k; performance.now() < deadline; i += stride) {
      await timed(c, 'list', z.list(tg[i % tg.length], listLimit), undefined, [200])
    }
  })
  spawnLoops(o.hello ?? 0, async (c) => {
    const head = `GET / HTTP/1.1\r\nHost: ${hostHeader}`
    while (performance.now() < deadline) await timed(c, 'hello', head, undefined, [200])
  })

  try {
    await Promise.all(loops)
  } finally {
    for (const c of conns) c.close()
  }
  return summarize(rec, 'closed', (performance.now() - start) / 1000, null)
}

interface Job {
  op: 'post' | 'claim' | 'delete' | 'delete1' | 'hello'
  /** performance.now() at which the request was meant to be sent. */
  intended: number
  t: Target
  ids?: string[]
  href?: string
}

/** A FIFO with O(1) shift. */
class Fifo<T> {
  #items: (T | undefined)[] = []
  #head = 0
  get length(): number {
    return this.#items.length - this.#head
  }
  push(v: T): void {
    this.#items.push(v)
  }
  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined
    const v = this.#items[this.#head]
    this.#items[this.#head++] = undefined
    if (this.#head > 4096 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
    return v
  }
  drain(): T[] {
    const out = this.#items.slice(this.#head) as T[]
    this.#items = []
    this.#head = 0
    return out
  }
}

async function runOpen(o: LoadOptions): Promise<LoadResult> {
  const { host, port, hostHeader } = endpoint(o.url)
  const tg = targets(o.queues, o.tenants, o.prefix)
  const rec = new Recorder()
  const z = new ZaqarRequests(hostHeader, o.batch, o.size)
  const free: HttpConnection[] = []
  const all: HttpConnection[] = []
  for (let i = 0; i < o.connections; i++) {
    const c = new HttpConnection(host, port, o.timeoutMs)
    free.push(c)
    all.push(c)
  }
  const arrivals = new Fifo<Job>()
  // Reactions to a claim (its deletes) go before new arrivals, as a real consumer would do.
  const reactions = new Fifo<Job>()
  const postRate = o.producers > 0 ? o.rate / o.batch : 0
  const claimRate = o.consumers > 0 ? o.rate / o.claimLimit : 0
  const helloRate = (o.hello ?? 0) > 0 ? o.rate : 0
  const helloHead = `GET / HTTP/1.1\r\nHost: ${hostHeader}`
  let posts = 0
  let claims = 0
  let hellos = 0
  const inFlight = new Set<Job>()
  let finished = false
  const start = performance.now()
  const end = start + o.durationS * 1000

  const send = (c: HttpConnection, j: Job): void => {
    let head: string
    let body: Buffer | undefined
    let ok: number[]
    if (j.op === 'post') [head, body, ok] = [...z.post(j.t), [201]]
    else if (j.op === 'claim') [head, body, ok] = [...z.claim(j.t, o.claimLimit), [201, 204]]
    else if (j.op === 'delete') [head, body, ok] = [z.deleteIds(j.t, j.ids!), undefined, [204]]
    else if (j.op === 'hello') [head, body, ok] = [helloHead, undefined, [200]]
    else [head, body, ok] = [z.deleteHref(j.t, j.href!), undefined, [204]]
    inFlight.add(j)
    c.request(head, body).then(
      (r) => {
        inFlight.delete(j)
        free.push(c)
        if (finished) return
        const now = performance.now()
        const good = ok.includes(r.status)
        rec.op(j.op).record((now - j.intended) * 1000, good, r.status)
        if (good) {
          if (j.op === 'post') rec.msgsIn += o.batch
          else if (j.op === 'delete') rec.msgsOut += j.ids!.length
          else if (j.op === 'delete1') rec.msgsOut++
          else if (j.op === 'hello') {
            // the latency is all a hello-world teaches
          } else if (r.status === 204) rec.emptyClaims++
          else {
            const msgs = claimedMessages(r.body)
            if (o.deleteMode === 'bulk') reactions.push({ op: 'delete', intended: now, t: j.t, ids: msgs.map((m) => m.id) })
            else for (const m of msgs) reactions.push({ op: 'delete1', intended: now, t: j.t, href: m.href })
          }
        }
        pump()
      },
      () => {
        inFlight.delete(j)
        free.push(c)
        if (finished) return
        rec.op(j.op).record((performance.now() - j.intended) * 1000, false, 'error')
        pump()
      },
    )
  }

  const pump = (): void => {
    while (free.length > 0) {
      const j = reactions.length > 0 ? reactions.shift() : arrivals.shift()
      if (j === undefined) return
      send(free.pop()!, j)
    }
  }

  let qi = 0
  let ci = 0
  // Arrival k of a stream is due at its intended time: posts at k/rate, claims at (k+½)/rate
  // (offset so they do not coincide), for every k whose intended time falls inside the run.
  const durMs = o.durationS * 1000
  const schedule = (now: number): void => {
    const t = Math.min(now - start, durMs)
    while (postRate > 0) {
      const at = (posts / postRate) * 1000
      if (at > t || at >= durMs) break
      arrivals.push({ op: 'post', intended: start + at, t: tg[qi++ % tg.length] })
      posts++
    }
    while (claimRate > 0) {
      const at = ((claims + 0.5) / claimRate) * 1000
      if (at > t || at >= durMs) break
      arrivals.push({ op: 'claim', intended: start + at, t: tg[ci++ % tg.length] })
      claims++
    }
    while (helloRate > 0) {
      const at = (hellos / helloRate) * 1000
      if (at > t || at >= durMs) break
      arrivals.push({ op: 'hello', intended: start + at, t: tg[0] })
      hellos++
    }
  }

  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now()
      schedule(now)
      pump()
      if (now >= end) resolve()
      else setTimeout(tick, 1)
    }
    tick()
  })
  // No new arrivals now; let the backlog, what is in flight and the deletes it triggers finish,
  // for a bounded time.
  const drainEnd = performance.now() + (o.drainMs ?? 3000)
  while ((inFlight.size > 0 || reactions.length > 0 || arrivals.length > 0) && performance.now() < drainEnd) {
    await sleep(5)
  }
  const stop = performance.now()
  finished = true
  // Requests still queued in the client or unanswered: their latency is at least this long, and
  // they count as failures ("unsent" / "unanswered").
  for (const q of [arrivals, reactions]) {
    for (const j of q.drain()) {
      rec.op(j.op).record((stop - j.intended) * 1000, false, 'unsent')
      rec.unsent++
    }
  }
  for (const j of inFlight) rec.op(j.op).record((stop - j.intended) * 1000, false, 'unanswered')
  for (const c of all) c.close()
  return summarize(rec, 'open', o.durationS, o.rate)
}

/** PUT every queue of `targets(n, 1, prefix)`, over `conns` connections; says how it went. */
export async function createQueues(url: string, n: number, prefix: string, conns: number): Promise<string> {
  const u = new URL(url)
  const tg = targets(n, 1, prefix)
  const t0 = performance.now()
  let failed = 0
  await Promise.all(
    Array.from({ length: Math.min(conns, n) }, async (_, k) => {
      const c = new HttpConnection(u.hostname, Number(u.port), 30_000)
      const z = new ZaqarRequests(u.host, 1, 10)
      try {
        for (let i = k; i < n; i += conns) {
          const r = await c.request(...z.createQueue(tg[i])).catch(() => null)
          if (r === null || (r.status !== 201 && r.status !== 204)) failed++
        }
      } finally {
        c.close()
      }
    }),
  )
  const secs = (performance.now() - t0) / 1000
  return `${n.toLocaleString('en-US')} queue${n === 1 ? '' : 's'} created first (PUT, ${conns} connection${conns === 1 ? '' : 's'}) in ${secs.toFixed(1)} s = ${Math.round(n / secs)} queues/s${failed ? `, ${failed} failed` : ''}`
}
