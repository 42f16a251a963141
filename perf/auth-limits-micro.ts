/**
 * What authentication, rate limits and quotas cost (docs/limits.md, docs/benchmarks.md), in one
 * run: `node dist/perf/auth-limits-micro.js [--seconds 3] [--connections 8]
 * [--rounds 3] [--only micro|http]` (about 4 minutes).
 *
 * 1. Micro (in-process, one call at a time): ns or µs per call of each hot-path piece — strategy
 *    none, a cached API key, a cached Keystone token, a rate-limit check in-process and in Redis,
 *    a store's post with and without a quota of messages per queue (SQLite at several queue
 *    depths: its check counts the queue's messages from the index, up to the quota; Redis: one
 *    ZCOUNT), and a queue's placement with and without a quota of queues.
 * 2. HTTP (the real server in this process, a closed-loop client in a worker thread with its own
 *    event loop): POST of 1 and of 10 messages with auth none / keys (cached) / Keystone (cached,
 *    a real Keystone started once when Debian's keystone is installed), rate limits off / on,
 *    quotas off / on, on the embedded SQLite store and on a Redis pool with a Redis catalog.
 *    Limits and quotas are set far above what the run reaches, so every post is accepted and
 *    what is measured is the cost of checking them. Posts go round-robin over 64 queues per
 *    connection, so no queue gets deep (a SQLite quota check costs up to the queue's depth).
 *
 * A load run: run nothing else on the machine meanwhile, so no two load runs share the cores.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import { createAuthenticator } from '../proxy/auth/index.js'
import { RateLimiter } from '../proxy/limits/index.js'
import { parseConfig } from '../shared/config.js'
import type { DataDriver, PostOptions } from '../shared/storage/contract.js'
import { HttpConnection } from './lib/http-client.js'
import { killAll, startRedis } from './lib/procs.js'
import { OpStats, type LatencySummary } from './lib/stats.js'

async function time(label: string, n: number, fn: () => unknown): Promise<number> {
  for (let i = 0; i < Math.min(n, 10_000); i++) await fn() // warm up (JIT, caches)
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < n; i++) {
    const r = fn()
    if (r instanceof Promise) await r
  }
  const ns = Number(process.hrtime.bigint() - t0) / n
  console.log(`${label.padEnd(58)} ${ns < 10_000 ? `${ns.toFixed(0)} ns` : `${(ns / 1000).toFixed(1)} µs`} per call`)
  return ns
}

// --- the HTTP client (worker thread) ---------------------------------------------------------

interface ClientJob {
  port: number
  headers: string
  batch: number
  connections: number
  seconds: number
  warmupSeconds: number
}

/** Closed loop: each connection posts again as soon as its previous post answered. */
async function runClient(job: ClientJob): Promise<LatencySummary> {
  const body = Buffer.from(JSON.stringify({ messages: Array.from({ length: job.batch }, (_, i) => ({ body: { event: 'bench', n: i, pad: 'x'.repeat(64) }, ttl: 600 })) }))
  const stats = new OpStats()
  let measuring = false
  let stop = false
  const conns = Array.from({ length: job.connections }, () => new HttpConnection('127.0.0.1', job.port))
  const loops = conns.map(async (c, ci) => {
    for (let i = 0; !stop; i++) {
      const head = `POST /v2/queues/bench-${ci}-${i % 64}/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json${job.headers}`
      const t0 = performance.now()
      const r = await c.request(head, body)
      if (measuring) stats.record((performance.now() - t0) * 1000, r.status === 201, r.status)
    }
  })
  await new Promise((r) => setTimeout(r, job.warmupSeconds * 1000))
  measuring = true
  const t0 = performance.now()
  await new Promise((r) => setTimeout(r, job.seconds * 1000))
  measuring = false
  const elapsed = (performance.now() - t0) / 1000
  stop = true
  await Promise.all(loops)
  for (const c of conns) c.close()
  return stats.summary(elapsed)
}

if (!isMainThread) {
  parentPort!.postMessage(await runClient(workerData as ClientJob))
} else {
  await main()
}

function load(job: ClientJob): Promise<LatencySummary> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL(import.meta.url), { workerData: job })
    w.once('message', resolve)
    w.once('error', reject)
  })
}

// --- main ------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { seconds: { type: 'string', default: '3' }, connections: { type: 'string', default: '8' }, rounds: { type: 'string', default: '3' }, only: { type: 'string' } },
  })
  const seconds = Number(values.seconds)
  const connections = Number(values.connections)
  const dir = mkdtempSync(join(tmpdir(), 'missive-micro-'))
  const teardowns: (() => unknown)[] = []
  const t = { teardown: (fn: () => unknown) => void teardowns.push(fn) }
  try {
    if (values.only !== 'http') await micro(dir)
    if (values.only !== 'micro') await http(t, seconds, connections, Number(values.rounds))
  } finally {
    for (const fn of teardowns.reverse()) await fn()
    killAll()
    rmSync(dir, { recursive: true, force: true })
  }
}

async function micro(dir: string): Promise<void> {
  console.log('## micro: one call at a time, in-process')
  const none = await createAuthenticator(parseConfig({ dataDir: dir }))
  await time('auth none', 1_000_000, () => none.authenticate(''))

  const keysConfig = parseConfig({ dataDir: dir, auth: { strategy: 'keys', keyCacheMs: 600_000 } })
  const keys = await createAuthenticator(keysConfig)
  const { newKey } = await import('../proxy/auth/keys.js')
  const k = newKey()
  await keys.keys!.put({ id: k.id, hash: k.hash, project: 'p', roles: ['member'], description: '', created: Date.now(), expires: null })
  await keys.authenticate(k.key)
  await time('auth keys, cached key', 1_000_000, () => keys.authenticate(k.key))
  await time('auth keys, uncached (SQLite catalog read + sha256)', 20_000, () => {
    keys.forgetKey(k.id)
    return keys.authenticate(k.key)
  })
  await keys.close()

  const { CredentialCache } = await import('../proxy/auth/index.js')
  const { identityOf } = await import('../proxy/auth/identity.js')
  // The cached path of strategy keystone is one CredentialCache lookup, as measured here (the
  // HTTP part below measures it through a real Keystone).
  const cache = new CredentialCache<undefined>(10_000)
  const token = 'gAAAAAB' + 'x'.repeat(180)
  cache.set(token, identityOf('p', ['member']), Date.now() + 3_600_000, undefined)
  await time('auth keystone, cached token (cache lookup)', 1_000_000, () => cache.get(token, Date.now()))

  const limits = { enabled: true, requestsPerSecond: 1e9, requestBurst: 1e9 }
  const local = (await RateLimiter.open(parseConfig({ dataDir: dir, rateLimits: limits })))!
  await time('rate limit, in-process bucket', 1_000_000, () => local.request('p'))
  await local.close()
  const quotasOnly = (await RateLimiter.open(parseConfig({ dataDir: dir, quotas: { enabled: true, messagesPerQueue: 1000 } })))!
  await time('quotas on, rate limits off: the request check', 1_000_000, () => quotasOnly.request('p'))
  await time("quotas on: the post's quota lookup (cached override)", 1_000_000, () => quotasOnly.messages('p', 1))
  await quotasOnly.close()

  const redis = await startRedis({ dir, appendfsync: 'everysec' })
  const shared = (await RateLimiter.open(parseConfig({ dataDir: dir, catalog: `${redis.url}/1`, rateLimits: limits })))!
  await time('rate limit, Redis bucket (sequential)', 5_000, () => shared.request('p'))
  await shared.close()

  // A store's post with and without a quota of messages per queue.
  const { openDriver } = await import('../worker/storage/index.js')
  const post = (d: DataDriver, queue: string, opts: PostOptions) => d.postMessages({ project: 'p', queue }, [{ body: '{"a":1}', ttl: 3600 }], opts)
  const base: PostOptions = { clientId: '3381af92-2b9e-11e3-b191-71861300734c', defaultTtl: 3600, postBytes: 20, queuePolicy: true }
  const quota: PostOptions = { ...base, maxMessages: 1_000_000 }
  const sqlite = await openDriver('sqlite:', { dataDir: dir, durability: 'fast' })
  for (const depth of [0, 1_000, 10_000]) {
    const q = `depth-${depth}`
    for (let i = 0; i < depth; i += 100) await sqlite.postMessages({ project: 'p', queue: q }, Array.from({ length: 100 }, () => ({ body: '{"a":1}', ttl: 3600 })), base)
    // Each measured post adds one message; 2 000 calls barely move the depth.
    await time(`SQLite post 1, queue of ${depth}, no quota`, 2_000, () => post(sqlite, q, base))
    await time(`SQLite post 1, queue of ${depth}, quota on`, 2_000, () => post(sqlite, q, quota))
  }
  // The worst case: a full queue refuses every post after counting it exactly (up to the quota).
  const atQuota = async (d: DataDriver, q: string): Promise<void> => {
    const full: PostOptions = { ...base, maxMessages: (await d.stats({ project: 'p', queue: q })).total }
    await time(`${d.kind === 'sqlite' ? 'SQLite' : 'Redis'} post 1 refused: queue of 10000 at its quota`, 1_000, () => post(d, q, full).catch(() => undefined))
  }
  await atQuota(sqlite, 'depth-10000')
  await sqlite.close()
  const rd = await openDriver(`${redis.url}/0`, { dataDir: dir, durability: 'fast' })
  for (let i = 0; i < 10_000; i += 100) await rd.postMessages({ project: 'p', queue: 'deep' }, Array.from({ length: 100 }, () => ({ body: '{"a":1}', ttl: 3600 })), base)
  await time('Redis post 1 (sequential), queue of 10000, no quota', 5_000, () => post(rd, 'deep', base))
  await time('Redis post 1 (sequential), queue of 10000, quota on', 5_000, () => post(rd, 'deep', quota))
  await atQuota(rd, 'deep')
  await rd.close()

  // A queue's placement (only when a queue is created) with and without a quota of queues.
  const { openCatalog } = await import('../catalog/index.js')
  for (const [name, uri] of [['SQLite', `sqlite:${join(dir, 'cat.sqlite')}`], ['Redis', `${redis.url}/2`]] as const) {
    const cat = await openCatalog(uri, { dataDir: dir })
    await cat.putPool({ name: 'default', uri: 'sqlite:', weight: 1, flavor: null, options: {} })
    let i = 0
    await time(`${name} catalog: place a new queue`, 2_000, () => cat.place({ project: 'a', queue: `q${i++}` }, 'default'))
    await time(`${name} catalog: place a new queue within a quota`, 2_000, () => cat.placeWithin({ project: 'b', queue: `q${i++}` }, 'default', 1_000_000))
    await cat.close()
  }
  await redis.stop()
}

// --- HTTP --------------------------------------------------------------------------------------

interface Case {
  name: string
  store: 'sqlite' | 'redis'
  config: Record<string, unknown>
  /** Headers each post carries after Host and Content-Type (credentials, Client-ID, project). */
  headers: string
}

async function http(t: { teardown(fn: () => unknown): void }, seconds: number, connections: number, rounds: number): Promise<void> {
  const { backend, startProxy } = await import('../tests/auth/harness.js')
  const { hasKeystone, startKeystone } = await import('../tests/auth/keystone-server.js')
  const client = 'Client-ID: 3381af92-2b9e-11e3-b191-71861300734c'
  const none = `\r\n${client}\r\nX-Project-ID: bench`
  const rates = { enabled: true, requestsPerSecond: 1e9, requestBurst: 1e9, messagesPerSecond: 1e9, messageBurst: 1e9 }
  const quotas = { enabled: true, queuesPerProject: 1_000_000, messagesPerQueue: 1_000_000 }
  const ks = hasKeystone() ? await startKeystone(t) : undefined
  const keystoneToken = ks === undefined ? undefined : await ks.token('alice', 'alpha')
  const cases: Case[] = [
    { name: 'auth none, limits off, quotas off', store: 'sqlite', config: {}, headers: none },
    { name: 'auth keys (cached)', store: 'sqlite', config: { auth: { strategy: 'keys', keyCacheMs: 600_000 } }, headers: 'keys' },
    ...(ks === undefined
      ? []
      : [{ name: 'auth keystone (cached)', store: 'sqlite' as const, config: { auth: { strategy: 'keystone', keystone: { url: ks.url, ...ks.service } } }, headers: `\r\n${client}\r\nX-Auth-Token: ${keystoneToken}` }]),
    { name: 'rate limits on (in-process buckets)', store: 'sqlite', config: { rateLimits: rates }, headers: none },
    { name: 'quotas on', store: 'sqlite', config: { quotas }, headers: none },
    { name: 'auth keys + rate limits + quotas', store: 'sqlite', config: { auth: { strategy: 'keys', keyCacheMs: 600_000 }, rateLimits: rates, quotas }, headers: 'keys' },
    { name: 'Redis pool: limits off, quotas off', store: 'redis', config: {}, headers: none },
    { name: 'Redis pool: rate limits on (Redis buckets)', store: 'redis', config: { rateLimits: rates }, headers: none },
    { name: 'Redis pool: quotas on', store: 'redis', config: { quotas }, headers: none },
  ]
  if (ks === undefined) console.log('(keystone is not installed: the Keystone case is skipped)')
  // Every proxy is set up and primed first; then the cases run in turn, `rounds` times over, so
  // a disturbance on the shared machine hits one round of many cases rather than all rounds of
  // one. Reported: the median round of each case (and the range of its throughput).
  const ready: { c: Case; port: number; headers: string }[] = []
  for (const c of cases) {
    const b = await backend(t, c.store)
    const p = await startProxy(t, b, { adminToken: 'op', ...c.config })
    let headers = c.headers
    if (headers === 'keys') {
      const r = await fetch(`${p.base}/v2/admin/keys`, {
        method: 'POST',
        headers: { 'X-Auth-Token': 'op', 'X-Project-ID': 'ops', 'Client-ID': '3381af92-2b9e-11e3-b191-71861300734c' },
        body: JSON.stringify({ project: 'bench' }),
      })
      headers = `\r\n${client}\r\nX-Auth-Token: ${((await r.json()) as { key: string }).key}`
    }
    // One post first, awaited: a cached credential is what is measured (a Keystone token's first
    // validation, and Missive's own service login, take seconds on a loaded machine).
    const primed = await fetch(`${p.base}/v2/queues/prime/messages`, {
      method: 'POST',
      headers: Object.fromEntries(headers.split('\r\n').filter((h) => h !== '').map((h) => [h.slice(0, h.indexOf(':')), h.slice(h.indexOf(':') + 1).trim()])),
      body: JSON.stringify({ messages: [{ body: 'prime' }] }),
    })
    if (primed.status !== 201) throw new Error(`${c.name}: the priming post answered ${primed.status}: ${await primed.text()}`)
    ready.push({ c, port: Number(new URL(p.base).port), headers })
  }
  const results = ready.map(() => ({ one: [] as LatencySummary[], ten: [] as LatencySummary[] }))
  for (let round = 0; round < rounds; round++) {
    for (const [i, r] of ready.entries()) {
      results[i]!.one.push(await load({ port: r.port, headers: r.headers, batch: 1, connections, seconds, warmupSeconds: 1 }))
      results[i]!.ten.push(await load({ port: r.port, headers: r.headers, batch: 10, connections, seconds, warmupSeconds: 1 }))
    }
  }
  const median = (xs: LatencySummary[]): LatencySummary => [...xs].sort((a, b) => a.rps - b.rps)[Math.floor(xs.length / 2)]!
  const range = (xs: LatencySummary[], k: number): string => `${Math.min(...xs.map((x) => x.rps * k)).toFixed(0)}–${Math.max(...xs.map((x) => x.rps * k)).toFixed(0)}`
  console.log(`\n## HTTP: closed loop, ${connections} connections, ${seconds} s per case after 1 s of warm-up, ${rounds} rounds (median round; range)`)
  console.log(`${'case'.padEnd(44)} ${'post 1: req/s'.padStart(14)} ${'range'.padStart(12)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)}   ${'post 10: msg/s'.padStart(14)} ${'range'.padStart(12)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)}`)
  for (const [i, r] of ready.entries()) {
    const one = median(results[i]!.one)
    const ten = median(results[i]!.ten)
    const bad = Object.assign({}, ...results[i]!.one.map((x) => x.failures), ...results[i]!.ten.map((x) => x.failures)) as Record<string, number>
    console.log(
      `${r.c.name.padEnd(44)} ${one.rps.toFixed(0).padStart(14)} ${range(results[i]!.one, 1).padStart(12)} ${one.p50.toFixed(2).padStart(7)} ${one.p99.toFixed(2).padStart(7)}   ` +
        `${(ten.rps * 10).toFixed(0).padStart(14)} ${range(results[i]!.ten, 10).padStart(12)} ${ten.p50.toFixed(2).padStart(7)} ${ten.p99.toFixed(2).padStart(7)}` +
        (Object.keys(bad).length > 0 ? `  FAILURES ${JSON.stringify(bad)}` : ''),
    )
  }
}
