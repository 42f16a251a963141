#!/usr/bin/env node
/**
 * `npm run bench`: starts Missive itself (embedded SQLite store, and a Redis pool when
 * redis-server is installed and the Redis driver works), measures the ceilings in the same run
 * (a uWS hello-world, raw Redis pipelined writes), runs the standard suite against each store,
 * and writes perf/results/<date>-<commit>.{json,md,svg}. See docs/benchmarks.md.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { appendFileSync, existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { join, relative, resolve } from 'node:path'
import { helpText, parseArgs, UsageError, type FlagSpec } from './lib/args.js'
import { autocannonPost, autocannonRun, engineHello, engineHelloOpen, redisBenchmark, redisPipelined, wrkHello, type RedisCeiling, type ThroughputCeiling } from './lib/ceilings.js'
import { describeDamon, kdamonds, pauseDamon } from './lib/host.js'
import { HttpConnection } from './lib/http-client.js'
import { createQueues, openRequestRate, runLoad, standardLoad, type LoadOptions, type LoadResult } from './lib/load.js'
import { aofQuiet, cpuSeconds, hasBinary, killAll, redisCommand, redisInfo, redisLatency, latencyText, ROOT, startHello, startMissive, startRedis, StartError, type MissiveService, type RedisService, type Service } from './lib/procs.js'
import { ANCHOR_SCENARIOS, anchorRatios, REPORT_VERSION, renderMarkdown, renderSvg, type CpuUse, type Report, type ScenarioResult, type StoreResult, type TargetResult } from './lib/report.js'
import { noisyMarkdown, runNoisy, type NoisyResult } from './lib/noisy.js'
import { Pacer } from './lib/pacer.js'
import { migrationMarkdown, runMigrationBench } from './lib/migration.js'
import { round } from './lib/stats.js'
import { ZaqarRequests } from './lib/zaqar.js'
import { startZaqar, zaqarMissing } from './lib/zaqar-service.js'
import { resolveWorkers } from '../shared/auto-workers.js'

export const BENCH_FLAGS: FlagSpec[] = [
  { name: 'quick', type: 'boolean', default: false, help: 'tiny smoke suite (< 60 s): short scenarios, no cross-checks, no durability/queue-count runs' },
  { name: 'out', type: 'string', default: 'perf/results', help: 'directory for the report files (relative to the repository root)' },
  { name: 'profile', type: 'boolean', default: false, help: 'write CPU profiles of proxy and workers to <out>/profiles-<date>/<store>/' },
  { name: 'stores', type: 'list', default: ['sqlite', 'redis', 'zaqar'], help: 'stores to run: sqlite, redis, zaqar (the real Zaqar 15 on Redis under gunicorn, when installed: the closed-loop scenarios only)' },
  { name: 'duration', type: 'number', default: undefined, help: 'seconds per scenario (default 8; --quick 1)' },
  { name: 'connections', type: 'number', default: 32, help: 'closed-loop connections (mixed: half producers, half consumers)' },
  { name: 'open-connections', type: 'number', default: 64, help: 'open-loop connection pool' },
  { name: 'queues', type: 'number', default: 4, help: 'queues for the standard scenarios' },
  { name: 'tenants', type: 'number', default: 1, help: 'projects the queues are spread over' },
  { name: 'size', type: 'number', default: 200, help: 'bytes of JSON per message' },
  { name: 'open-duration', type: 'number', default: undefined, help: 'seconds per open-loop window (default 15; --quick 1)' },
  { name: 'rates', type: 'list', default: undefined, help: 'open-loop offered rates, messages/s each way (default 1000,5000,10000,20000; --quick 1000)' },
  { name: 'many-queues', type: 'number', default: 10000, help: 'queue count of the T7 scenario' },
  { name: 'pause-damon', type: 'boolean', default: false, help: "turn the host kernel's DAMON monitors off for the run and back on after (root; docs/benchmarks.md)" },
  { name: 'only', type: 'string', default: undefined, help: 'run one scenario alone: "open" (the open-loop rates with their hello-world floors, on a fresh service per store), "noisy" (the noisy-neighbour scenario on each of --stores), "migration" (live migration and pool drain, Redis pools)' },
  { name: 'redis-durability', type: 'string', default: 'fast', help: 'the Redis pool measured by the main suite: fast (AOF everysec) or durable (AOF always, durability=durable)' },
  { name: 'migration-messages', type: 'number', default: 1_000_000, help: 'messages in the queue the migration scenario moves' },
  { name: 'migration-rate', type: 'number', default: 1000, help: 'msgs/s in and out of that queue while it moves' },
  { name: 'migration-window', type: 'number', default: 10, help: 'seconds of traffic measured before and after the migration' },
  { name: 'drain-queues', type: 'number', default: 1000, help: 'queues on the pool the drain scenario empties' },
  { name: 'drain-messages', type: 'number', default: 10, help: 'messages in each of those queues' },
  { name: 'noisy-backlog', type: 'number', default: 100000, help: 'delayed messages the noisy-neighbour attacker loads' },
  { name: 'noisy-batch', type: 'number', default: 1000, help: 'messages per attacker post in the noisy-neighbour scenario (the default max_messages_per_post)' },
  { name: 'noisy-duration', type: 'number', default: 15, help: 'seconds measured in the noisy-neighbour scenario' },
  { name: 'noisy-attack-rate', type: 'number', default: 0, help: 'requests/s of each noisy-neighbour attacker connection (0: closed loops, as fast as answered)' },
  { name: 'help', type: 'boolean', default: false, help: 'show this help' },
]

interface Ctx {
  quick: boolean
  /** `--only open`: the open-loop rates alone (and their floors), no closed-loop suite. */
  openOnly: boolean
  /** The Redis variant the main suite measures. */
  redisDurability: 'fast' | 'durable'
  durationS: number
  connections: number
  openConnections: number
  queues: number
  tenants: number
  size: number
  rates: number[]
  /** Seconds of each open-loop window (longer than closed-loop ones: rare stalls belong in p99). */
  openDurationS: number
  manyQueues: number
  tmp: string
  profileRoot: string | null
  helloEngine: number | null
  /** T4's durable floor, once measured (Report['ceilings']['durableFloor']). */
  durableFloor?: NonNullable<Report['ceilings']['durableFloor']>
  helloAutocannon: number | null
  redisWrites: number | null
  notes: string[]
  clkTck: number
}

/** Longest window of an open-loop floor (s): see the ceilings below. */
const FLOOR_MAX_S = 8

const log = (msg: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`)
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return ''
  }
}

/** A number field of a Redis INFO reply (0 when absent). */
const infoNumber = (m: Map<string, string>, k: string): number => Number(m.get(k) ?? 0)

/** AOF rewrites Redis started or finished between two INFOs (one still running counts). */
function aofRewrites(before: Map<string, string>, after: Map<string, string>): number {
  const n = infoNumber
  return n(after, 'aof_rewrites') - n(before, 'aof_rewrites') + (n(after, 'aof_rewrite_in_progress') && !n(before, 'aof_rewrite_in_progress') ? 1 : 0)
}

/**
 * What Redis did during a scenario that can stall every client at once: AOF rewrites (a fork,
 * then a child competing for the cores) and the data set it had to fork.
 */
function redisActivity(before: Map<string, string>, after: Map<string, string>): string {
  const n = infoNumber
  const rewrites = aofRewrites(before, after)
  const mb = (v: number): string => `${Math.round(v / 1048576)} MB`
  return `Redis: ${rewrites} AOF rewrite(s) started or finished during the run${rewrites ? ` (last fork ${Math.round(n(after, 'latest_fork_usec') / 1000)} ms)` : ''}; ` +
    `used_memory ${mb(n(before, 'used_memory'))} → ${mb(n(after, 'used_memory'))}, AOF ${mb(n(after, 'aof_current_size'))}`
}

function baseLoad(ctx: Ctx, url: string, over: Partial<LoadOptions>): LoadOptions {
  return standardLoad(url, ctx.durationS, ctx.connections, { size: ctx.size, queues: ctx.queues, tenants: ctx.tenants, ...over })
}


interface CpuProbe {
  sample(): Map<string, number>
}

function cpuProbe(ctx: Ctx, svc: MissiveService | null, redis: RedisService | null): CpuProbe {
  return {
    sample() {
      const m = new Map<string, number>()
      if (svc) {
        const roles = svc.roles()
        let w = 0
        for (const p of roles.workers) w += cpuSeconds(p, ctx.clkTck) ?? 0
        let px = 0
        for (const p of roles.proxy) px += cpuSeconds(p, ctx.clkTck) ?? 0
        m.set('proxy', px)
        m.set('workers', w)
      }
      if (redis) {
        m.set('redis', cpuSeconds(redis.pid, ctx.clkTck) ?? 0)
        m.set('redisRewrite', cpuSeconds(redis.pid, ctx.clkTck, true) ?? 0)
      }
      const u = process.cpuUsage()
      m.set('loadgen', (u.user + u.system) / 1e6)
      return m
    },
  }
}

function cpuDelta(a: Map<string, number>, b: Map<string, number>, seconds: number): CpuUse {
  const out: CpuUse = {}
  for (const [k, v] of b) {
    const d = v - (a.get(k) ?? 0)
    ;(out as Record<string, number>)[k] = round(d / seconds, 2)
  }
  return out
}

/** Post one message, claim it, delete it: proves the store works before measuring it. */
async function smoke(url: string): Promise<string | null> {
  const u = new URL(url)
  const c = new HttpConnection(u.hostname, Number(u.port), 10_000)
  const z = new ZaqarRequests(u.host, 1, 100)
  const t = { project: 'bench-smoke', queue: 'smoke' }
  try {
    const p = await c.request(...z.post(t))
    if (p.status !== 201) return `POST messages answered ${p.status}: ${p.body.toString('utf8').slice(0, 200)}`
    const cl = await c.request(...z.claim(t, 1))
    if (cl.status !== 201) return `POST claims answered ${cl.status}: ${cl.body.toString('utf8').slice(0, 200)}`
    const ids = (JSON.parse(cl.body.toString('utf8')) as { messages: { id: string }[] }).messages.map((m) => m.id)
    const d = await c.request(z.deleteIds(t, ids))
    if (d.status !== 204) return `DELETE messages answered ${d.status}`
    return null
  } catch (err) {
    return (err as Error).message
  } finally {
    c.close()
  }
}

function autocannonToLoad(r: Awaited<ReturnType<typeof autocannonPost>>, batch: number, durationS: number): LoadResult {
  const count = Math.round(r.reqPerS * durationS)
  const ok = Math.max(0, count - r.non2xx - r.errors)
  const failures: Record<string, number> = {}
  if (r.non2xx) failures.non2xx = r.non2xx
  if (r.errors) failures.error = r.errors
  return {
    mode: 'closed',
    seconds: durationS,
    offered: null,
    msgsInPerS: round((ok * batch) / durationS, 1),
    msgsOutPerS: 0,
    reqPerS: r.reqPerS,
    emptyClaims: 0,
    unsent: 0,
    failures: r.non2xx + r.errors,
    ops: { post: { count, rps: r.reqPerS, mean: 0, p50: r.p50 ?? 0, p90: r.p90, p99: r.p99 ?? 0, p999: 0, max: r.max, failures } },
  }
}

interface StoreVariant {
  key: string
  label: string
  /**
   * Open-loop rates also measured on this variant's fresh pool, before its post 10: the durable
   * Redis pool's 10k + 10k, which is how issue 19 defines T4 (a durable pool), next to the main
   * suite's open loops on its grown pool.
   */
  openRates?: number[]
}

interface StoreSetup {
  name: string
  main: StoreVariant
  /** Other persistence settings, each measured with the post-10 scenario only (T6). */
  alts: StoreVariant[]
  /**
   * Process layouts compared on a fresh pool each, with post 1 and post 10: the pool's driver in
   * a worker process, and inside the proxy (`workers: 0`). Their open loops are left to `--only
   * open` runs, which keeps the full suite, Zaqar included, under 10 minutes.
   */
  layouts?: StoreVariant[]
  /**
   * The anchor (Zaqar itself, perf/lib/zaqar-service.ts): only the closed-loop scenarios compared
   * with it (post 1, post 10, claim 10 + bulk delete, mixed); no variants, layouts or noisy run.
   */
  anchor?: boolean
  start(variant: string, profileDir: string | null): Promise<{ svc: MissiveService; redis: RedisService | null; pool: string; config: Record<string, unknown> }>
}

/**
 * `--only migration` (perf/lib/migration.ts): a Missive with its SQLite default pool and two Redis
 * pools (the shipped `fast` configuration), the big-queue move under traffic and the pool drain;
 * writes <base>-migration.{json,md}.
 */
async function runMigrationOnly(
  a: Record<string, unknown>,
  tmp: string,
  base: string,
  run: { commit: { short: string; dirty: boolean }; started: Date; short: string },
): Promise<void> {
  if (!hasBinary('redis-server')) throw new UsageError('--only migration needs redis-server')
  const rate = Number(a['migration-rate'])
  const md: string[] = [`# Live migration — ${run.started.toISOString().slice(0, 10)} — ${run.short}${run.commit.dirty ? ' (dirty tree)' : ''}`, '']
  const json: Record<string, unknown> = { commit: run.commit, startedAt: run.started.toISOString(), loadavgStart: os.loadavg() }
  try {
    const token = 'bench-admin-token'
    for (const d of ['r1', 'r2']) await mkdir(join(tmp, d), { recursive: true })
    const r1 = await startRedis({ dir: join(tmp, 'r1'), appendfsync: 'everysec' })
    const r2 = await startRedis({ dir: join(tmp, 'r2'), appendfsync: 'everysec' })
    const svc = await startMissive({ dataDir: join(tmp, 'missive'), pool: 'sqlite:', durability: 'fast', env: { MISSIVE_ADMIN_TOKEN: token, MISSIVE_ACCESS_LOG: 'false' } })
    log(`migration: Missive on ${svc.url}, Redis ${r1.version} on ${r1.port} and ${r2.port}`)
    const r = await runMigrationBench({
      url: svc.url,
      adminToken: token,
      pools: { r1: `${r1.url}?durability=fast`, r2: `${r2.url}?durability=fast` },
      messages: Number(a['migration-messages']),
      rate,
      windowS: Number(a['migration-window']),
      drainQueues: Number(a['drain-queues']),
      drainMessages: Number(a['drain-messages']),
      log,
    })
    json.result = r
    md.push(migrationMarkdown(r, rate))
  } finally {
    killAll()
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined)
  }
  json.loadavgEnd = os.loadavg()
  const file = `${base}-migration`
  await writeFile(`${file}.json`, `${JSON.stringify(json, null, 2)}\n`)
  await writeFile(`${file}.md`, `${md.join('\n')}\n`)
  process.stdout.write(`${md.join('\n')}\n`)
  log(`wrote ${relative(ROOT, `${file}.md`)}`)
}

/** The noisy-neighbour scenario (perf/lib/noisy.ts) on a fresh start of the store's main variant. */
async function runNoisyStore(ctx: Ctx, setup: StoreSetup, backlog: number, durationS: number, batch: number, attackRate: number): Promise<NoisyResult | { error: string }> {
  let started: Awaited<ReturnType<StoreSetup['start']>> | null = null
  try {
    started = await setup.start(setup.main.key, null)
    log(`${setup.name}: noisy neighbour …`)
    return await runNoisy({ url: started.svc.url, backlog, batch, rate: 1000, durationS, listers: 2, attackRate, log })
  } catch (err) {
    log(`${setup.name}: noisy neighbour failed: ${(err as Error).stack ?? String(err)}`)
    return { error: (err as Error).message }
  } finally {
    if (started) {
      await started.svc.stop()
      await started.redis?.stop()
    }
  }
}

/**
 * How a suite keeps step with Zaqar's (perf/lib/pacer.ts): the anchor's suite takes its turns
 * from `anchor`; the leading Missive store pairs each compared scenario through `lead`, then
 * releases the anchor and waits for it to stop (`anchorRun`) before its other scenarios.
 */
interface Pacing {
  anchor?: Pacer
  lead?: { pacer: Pacer; anchorRun: Promise<StoreResult> }
}

async function runStore(ctx: Ctx, setup: StoreSetup, pacing: Pacing = {}): Promise<StoreResult> {
  const result: StoreResult = { store: setup.name, pool: '', available: false, config: {}, scenarios: [] }
  const { anchor, lead } = pacing
  /**
   * A scenario compared with Zaqar (`body`: its run, with any prefill). The anchor runs it on its
   * turn, once the leader has; the leader then lets Zaqar run it, but only after this pool's AOF
   * rewrite (a child Redis forks after a scenario that grew the log) has ended: Zaqar's window
   * must not share the machine with it.
   */
  const compared = async <T>(id: string, body: () => Promise<T>): Promise<T> => {
    if (anchor) await anchor.turn(id)
    const out = await body()
    anchor?.done(id)
    if (lead) {
      const port = current?.redis?.port
      if (port !== undefined) {
        const waited = await aofQuiet(port)
        if (waited > 500) log(`${setup.name}: waited ${(waited / 1000).toFixed(1)} s for the AOF rewrite before Zaqar's ${id}`)
      }
      await lead.pacer.pair(id)
    }
    return out
  }
  let current: { svc: MissiveService; redis: RedisService | null } | null = null
  const stopCurrent = async (): Promise<void> => {
    if (current === null) return
    const c = current
    current = null
    const t = performance.now()
    await c.svc.stop().catch(() => undefined)
    // Diagnostics (with PERF_SERVICE_NODE_ARGS=--trace-gc, say): keep what the service printed.
    if (process.env.PERF_SERVICE_OUTPUT) appendFileSync(process.env.PERF_SERVICE_OUTPUT, c.svc.output())
    await c.redis?.stop().catch(() => undefined)
    log(`${setup.name}: stopped in ${((performance.now() - t) / 1000).toFixed(1)} s`)
  }
  try {
    const profileDir = ctx.profileRoot ? join(ctx.profileRoot, setup.name) : null
    if (profileDir) await mkdir(profileDir, { recursive: true })
    let started
    const tStart = performance.now()
    try {
      started = await setup.start(setup.main.key, profileDir)
      log(`${setup.name}: ${setup.anchor ? 'Zaqar' : 'Missive'} up in ${((performance.now() - tStart) / 1000).toFixed(1)} s`)
    } catch (err) {
      result.reason = err instanceof StartError ? `${setup.anchor ? 'Zaqar did not start' : 'Missive did not start on this pool'}: ${err.message}` : (err as Error).message
      log(`${setup.name}: not available (${result.reason})`)
      return result
    }
    current = started
    result.pool = started.pool
    result.config = { setting: setup.main.label, ...started.config }
    const smokeErr = await smoke(started.svc.url)
    if (smokeErr !== null) {
      result.reason = `smoke test failed: ${smokeErr}`
      log(`${setup.name}: not available (${result.reason})`)
      return result
    }
    result.available = true
    const url = started.svc.url

    const run = async (id: string, title: string, over: Partial<LoadOptions>, notes: string[] = []): Promise<ScenarioResult> => {
      const lo = baseLoad(ctx, current?.svc.url ?? url, over)
      log(`${setup.name}: ${id} …`)
      const probe = cpuProbe(ctx, current?.svc ?? null, current?.redis ?? null)
      const redisPort = current?.redis?.port
      const i0 = redisPort ? await redisInfo(redisPort).catch(() => null) : null
      if (redisPort) {
        // Redis's own latency monitor: which of its events (commands, AOF writes, forks) went over
        // 5 ms during this scenario.
        await redisCommand(redisPort, ['CONFIG', 'SET', 'latency-monitor-threshold', '5']).catch(() => '')
        await redisCommand(redisPort, ['LATENCY', 'RESET']).catch(() => '')
      }
      const c0 = probe.sample()
      const t0 = performance.now()
      const r = await runLoad(lo)
      const c1 = probe.sample()
      const extra = [...notes]
      const i1 = redisPort ? await redisInfo(redisPort).catch(() => null) : null
      const lat = redisPort ? await redisLatency(redisPort, true).catch(() => null) : null
      if (i0 && i1) {
        const events = lat && lat.size ? `; Redis events over 5 ms (worst, and the seconds with one): ${[...lat].map(([k, v]) => latencyText(k, v)).join(', ')}` : '; no Redis event over 5 ms'
        extra.push(redisActivity(i0, i1) + events)
      }
      const total = Object.values(r.ops).reduce((n, o) => n + o.count, 0)
      const transport = Object.values(r.ops).reduce((n, o) => n + (o.failures.error ?? 0), 0)
      if (total > 0 && transport > total / 2) {
        // Most requests failed: say what the service printed, it usually explains why.
        const said = (current?.svc.output() ?? '').trim().split('\n').slice(-4).join(' | ').slice(0, 800)
        extra.push(`${transport} of ${total} requests failed to connect or got no answer; the service's last output: ${said || '(nothing)'}`)
      }
      const sr = finish(ctx, id, title, 'engine', lo, r, cpuDelta(c0, c1, (performance.now() - t0) / 1000), extra, setup.name)
      if (lat) sr.redisEvents = Object.fromEntries(lat)
      if (i0 && i1) {
        // The AOF's growth, when no rewrite ran (a rewrite starts it over): what the disk took.
        const grew = infoNumber(i1, 'aof_current_size') - infoNumber(i0, 'aof_current_size')
        if (aofRewrites(i0, i1) === 0 && !infoNumber(i1, 'aof_rewrite_in_progress') && grew > 0) sr.aofGrowth = grew
      }
      result.scenarios.push(sr)
      log(`${setup.name}: ${id}: ${fmtLine(r)}`)
      return sr
    }
    const knobsOf = (lo: Partial<LoadOptions>) => lo
    /**
     * One open-loop window at `rate` on the current service. Steady state, not start-up: the same
     * load on the same queues and connection count for a moment first (not recorded), so JIT,
     * fresh connections and first-use costs stay out of the percentiles; the measured window is
     * then `--open-duration` long.
     */
    // T4's durable floor, on the same disk right after T4's window (the pool idle meanwhile).
    const t4Floor = async (rate: number, t4: ScenarioResult): Promise<void> => {
      if (rate === 10_000 && !ctx.quick) ctx.durableFloor = (await durableFloor(ctx, rate, t4)) ?? undefined
    }
    const openLoop = async (rate: number, id: string, title: string): Promise<ScenarioResult> => {
      const open = { producers: 1, consumers: 1, rate, connections: ctx.openConnections, prefix: 'open' }
      await runLoad(baseLoad(ctx, current?.svc.url ?? url, { ...open, durationS: ctx.quick ? 0.3 : 2, drainMs: 1000 }))
      return run(id, title, { ...open, durationS: ctx.openDurationS, drainMs: ctx.quick ? 1000 : 3000 })
    }

    // Warm-up (not recorded): JIT, SQLite page cache, connections.
    await runLoad(baseLoad(ctx, url, { producers: 8, durationS: ctx.quick ? 0.3 : 2, prefix: 'warmup' }))

    const d = ctx.durationS
    const conns = ctx.connections
    const half = Math.max(1, Math.floor(conns / 2))
    // Only what Zaqar is compared on, for the anchor; only the open loop with --only open.
    const full = !ctx.quick && !ctx.openOnly && setup.anchor !== true
    if (!ctx.openOnly) {
      let stock = 0
      const post1 = await compared('post1', () => run('post1', 'post, 1 msg/request', { producers: conns, batch: 1 }))
      stock += post1.result.msgsInPerS * post1.result.seconds
      const post10 = await compared('post10', () => run('post10', 'post, 10 msgs/request', { producers: conns, batch: 10 }))
      stock += post10.result.msgsInPerS * post10.result.seconds

      if (full) {
        for (const batch of [1, 10]) {
          log(`${setup.name}: autocannon-post${batch} …`)
          const dur = Math.max(1, Math.round(d * 0.6))
          const ac = await autocannonPost(url, { connections: conns, durationS: dur, batch, size: ctx.size, queues: ctx.queues, tenants: 1 })
          const lr = autocannonToLoad(ac, batch, dur)
          stock += lr.msgsInPerS * dur
          const lo = { producers: conns, batch, queues: ctx.queues, tenants: 1, durationS: dur }
          result.scenarios.push(finish(ctx, `autocannon-post${batch}`, `post, ${batch} msg${batch > 1 ? 's' : ''}/request (autocannon cross-check)`, 'autocannon', knobsOf(lo), lr, {}, ['one tenant, one Client-ID for all connections'], setup.name))
        }
      }

      if (setup.anchor !== true) await run('observe', 'observers: list 10', { observers: conns, durationS: Math.max(1, d * 0.6) })

      // Consumers need messages waiting: top the queues up so they cannot run dry.
      const prefill = async (want: number): Promise<void> => {
        const missing = want - stock
        if (missing <= 0) return
        const rate = Math.max(1000, post10.result.msgsInPerS)
        const secs = Math.min(ctx.quick ? 1 : d * 1.5, missing / rate + 0.5)
        log(`${setup.name}: prefill ~${Math.round(missing)} messages (${secs.toFixed(1)} s) …`)
        const r = await runLoad(baseLoad(ctx, url, { producers: conns, batch: 50, durationS: secs }))
        stock += r.msgsInPerS * r.seconds
      }
      const consumeEstimate = Math.max(post10.result.msgsInPerS, 2000) * d * 1.3
      const cb = await compared('consume-bulk', async () => {
        await prefill(consumeEstimate)
        return run('consume-bulk', 'consume: claim 10 + bulk delete', { consumers: conns, claimLimit: 10, deleteMode: 'bulk' })
      })
      stock -= cb.result.msgsOutPerS * cb.result.seconds
      if (full) {
        await prefill(Math.max(cb.result.msgsOutPerS, 2000) * d * 1.3)
        const cs = await run('consume-single', 'consume: claim 10 + delete each', { consumers: conns, claimLimit: 10, deleteMode: 'single' })
        stock -= cs.result.msgsOutPerS * cs.result.seconds
      }
      const mixed = await compared('mixed', () => run('mixed', `mixed: ${half} producers + ${conns - half} consumers, batches of 10`, { producers: half, consumers: conns - half }))
      stock += (mixed.result.msgsInPerS - mixed.result.msgsOutPerS) * mixed.result.seconds
    }
    if (lead) {
      // Zaqar has run what it is compared on: it stops before this suite goes on.
      lead.pacer.finish()
      await lead.anchorRun
    }

    for (const rate of setup.anchor ? [] : ctx.rates) {
      const sr = await openLoop(rate, `open-mixed-${rate}`, `open loop, mixed, batches of 10, ${rate.toLocaleString('en-US')} msgs/s each way`)
      if (setup.name === 'redis' && setup.main.key === 'durable') await t4Floor(rate, sr)
    }

    // Profiles are written when the processes exit: name them by role first.
    const roles = started.svc.roles()
    const supervisorPid = started.svc.pid
    await stopCurrent()
    if (profileDir) await nameProfiles(profileDir, roles, supervisorPid)

    if (full) {
      /** Runs `body` on a fresh service (and pool) of `variant`, after `warmupS` of unrecorded load; stops it after. */
      const onFreshPool = async (variant: string, warmupS: number, body: (svcUrl: string) => Promise<void>): Promise<void> => {
        try {
          current = await setup.start(variant, null)
          await runLoad(baseLoad(ctx, current.svc.url, { producers: 8, durationS: warmupS, prefix: 'warmup' }))
          await body(current.svc.url)
        } finally {
          await stopCurrent()
        }
      }
      // T6: the same post-10 run with the other persistence settings.
      for (const alt of setup.alts) {
        const id = `post10-${alt.key}`
        const title = `post, 10 msgs/request — ${alt.label}`
        try {
          await onFreshPool(alt.key, 1, async () => {
            for (const rate of ctx.quick ? [] : (alt.openRates ?? [])) {
              const t4 = await openLoop(rate, `open-mixed-${rate}-${alt.key}`, `open loop, mixed, batches of 10, ${rate.toLocaleString('en-US')} msgs/s each way — ${alt.label}, fresh pool`)
              if (alt.key === 'durable') await t4Floor(rate, t4)
            }
            await run(id, title, { producers: conns, batch: 10 })
          })
        } catch (err) {
          result.scenarios.push({
            id,
            title,
            tool: 'engine',
            knobs: {},
            result: emptyResult(),
            ratios: { reqToHello: null, msgsToRedisWrites: null },
            cpu: {},
            serverCpu: null,
            notes: [`not measured: ${(err as Error).message}`],
          })
        }
      }
      for (const layout of setup.layouts ?? []) {
        try {
          await onFreshPool(layout.key, 2, async () => {
            await run(`post1-${layout.key}`, `post, 1 msg/request — ${layout.label}`, { producers: conns, batch: 1 })
            await run(`post10-${layout.key}`, `post, 10 msgs/request — ${layout.label}`, { producers: conns, batch: 10 })
          })
        } catch (err) {
          ctx.notes.push(`${setup.name}: layout "${layout.label}" not measured: ${(err as Error).message}`)
        }
      }
      // T7: post 10 on one queue, then over `manyQueues` queues, each on a fresh pool of the main
      // setting with its queues (and placements) created first, so the pair differs in the number
      // of queues alone. In the main suite the second row ran on a pool the first had grown, with
      // that pool's AOF rewrites in its window: a difference that is not the queues'.
      for (const [n, prefix] of [[1, 'q1'], [ctx.manyQueues, 'many']] as const) {
        const id = `post10-q${n}`
        try {
          await onFreshPool(setup.main.key, 1, async (svcUrl) => {
            const created = await createQueues(svcUrl, n, prefix, Math.min(n, conns))
            log(`${setup.name}: ${created}`)
            const what = n === 1 ? '1 queue' : `${n.toLocaleString('en-US')} queues`
            await run(id, `post, 10 msgs/request, ${what}, fresh pool`, { producers: conns, batch: 10, queues: n, tenants: 1, prefix }, n === 1 ? [] : [created])
          })
        } catch (err) {
          ctx.notes.push(`${setup.name}: ${id} not measured: ${(err as Error).message}`)
        }
      }
    }
  } catch (err) {
    log(`${setup.name}: suite failed: ${(err as Error).stack ?? String(err)}`)
    ctx.notes.push(`${setup.name}: the suite stopped early: ${(err as Error).message}`)
  } finally {
    await stopCurrent()
    anchor?.close()
    lead?.pacer.finish()
  }
  return result
}

/**
 * T4's durable floor (perf/uws-hello.ts): the hello-world at `rate`'s request rate, each request
 * one SET of the AOF bytes per request that `t4` wrote, on a fresh Redis with the shipped durable
 * configuration (`appendfsync always`), after the same warm-up as an open-loop window. What this
 * machine's disk and Redis's fsync per turn cost a request, without a queue's work; null (with a
 * note) when it cannot run.
 */
async function durableFloor(ctx: Ctx, rate: number, t4: ScenarioResult): Promise<NonNullable<Ctx['durableFloor']> | null> {
  const requests = Object.values(t4.result.ops).reduce((n, o) => n + o.count, 0)
  const bytes = t4.aofGrowth !== undefined && requests > 0 ? Math.max(1, Math.round(t4.aofGrowth / requests)) : 2048
  log(`durable floor at ${rate} msgs/s: one ${bytes}-byte SET per request …`)
  let redis: RedisService | undefined
  let hello: Service | undefined
  try {
    redis = await startRedis({ dir: await mkdtemp(join(ctx.tmp, 'redis-floor-')), appendfsync: 'always' })
    hello = await startHello({ redisPort: redis.port, bytes })
    const { batch, claimLimit } = baseLoad(ctx, hello.url, {})
    const result = await engineHelloOpen(hello.url, openRequestRate(rate, batch, claimLimit), ctx.openConnections, ctx.openDurationS, ctx.quick ? 0.3 : 2)
    log(`durable floor: p50 ${result.ops.hello?.p50} p99 ${result.ops.hello?.p99} max ${result.ops.hello?.max} ms`)
    return { msgsPerS: rate, bytes, result }
  } catch (err) {
    ctx.notes.push(`durable floor not measured: ${(err as Error).message}`)
    return null
  } finally {
    await hello?.stop()
    await redis?.stop()
  }
}

function emptyResult(): LoadResult {
  return { mode: 'closed', seconds: 0, offered: null, msgsInPerS: 0, msgsOutPerS: 0, reqPerS: 0, emptyClaims: 0, unsent: 0, failures: 0, ops: {} }
}

function fmtLine(r: LoadResult): string {
  const ops = Object.entries(r.ops)
    .map(([k, v]) => `${k} p50 ${v.p50} p99 ${v.p99} max ${v.max} ms${Object.keys(v.failures).length ? ` fail ${JSON.stringify(v.failures)}` : ''}`)
    .join('; ')
  return `${r.msgsInPerS} in/s, ${r.msgsOutPerS} out/s, ${r.reqPerS} req/s; ${ops}`
}

/** A row's worker processes as the report shows them: the number, and "(auto)" when the default chose it. */
function workersShown(workers: number | undefined, pool: string): string {
  return workers === undefined ? `${resolveWorkers('auto', pool).workers} (auto)` : String(workers)
}

/** Server CPU (proxy + workers + Redis) per request and per message: robust to a busy machine. */
function serverCpu(cpu: CpuUse, r: LoadResult): { usPerReq: number; usPerMsg: number } | null {
  if (cpu.proxy === undefined) return null
  const cores = (cpu.proxy ?? 0) + (cpu.workers ?? 0) + (cpu.redis ?? 0)
  const msgs = r.msgsInPerS + r.msgsOutPerS
  return {
    usPerReq: r.reqPerS > 0 ? round((cores * 1e6) / r.reqPerS, 1) : 0,
    usPerMsg: msgs > 0 ? round((cores * 1e6) / msgs, 1) : 0,
  }
}

function finish(ctx: Ctx, id: string, title: string, tool: 'engine' | 'autocannon', lo: Partial<LoadOptions>, r: LoadResult, cpu: CpuUse, notes: string[], store: string): ScenarioResult {
  const hello = tool === 'engine' ? ctx.helloEngine : ctx.helloAutocannon
  const n = [...notes]
  if (r.emptyClaims > 0) n.push(`${r.emptyClaims} claims found nothing to claim (204)`)
  if (r.unsent > 0) n.push(`${r.unsent} requests were still queued in the load generator when the run ended (overload); counted as failures with their wait as latency`)
  const { url: _u, ...knobs } = lo as LoadOptions
  return {
    id,
    title,
    tool,
    knobs,
    result: r,
    ratios: {
      reqToHello: hello ? round(r.reqPerS / hello, 4) : null,
      msgsToRedisWrites: ctx.redisWrites && store === 'redis' && r.msgsInPerS + r.msgsOutPerS > 0 ? round((r.msgsInPerS + r.msgsOutPerS) / ctx.redisWrites, 4) : null,
    },
    cpu,
    serverCpu: serverCpu(cpu, r),
    notes: n,
  }
}

/** Renames CPU.<…>.<pid>.<…>.cpuprofile to <role>-<pid>.cpuprofile. */
async function nameProfiles(dir: string, roles: { proxy: number[]; workers: number[] }, supervisor: number): Promise<void> {
  // Children write their profile as they exit; give the file system a moment.
  await new Promise((r) => setTimeout(r, 300))
  for (const f of await readdir(dir)) {
    const m = /^CPU\.\d+\.\d+\.(\d+)\..*\.cpuprofile$/.exec(f)
    if (!m) continue
    const pid = Number(m[1])
    const role = roles.proxy.includes(pid) ? 'proxy' : roles.workers.includes(pid) ? `worker-${roles.workers.indexOf(pid)}` : pid === supervisor ? 'supervisor' : 'other'
    await rename(join(dir, f), join(dir, `${role}-${pid}.cpuprofile`))
  }
}

function storeSetups(ctx: Ctx, stores: string[]): StoreSetup[] {
  const out: StoreSetup[] = []
  if (stores.includes('sqlite')) {
    out.push({
      name: 'sqlite',
      main: { key: 'durable', label: 'durability=durable (fsync before 201; group commit)' },
      alts: [{ key: 'fast', label: 'durability=fast' }],
      async start(variant, profileDir) {
        const durability = variant === 'fast' ? 'fast' : 'durable'
        const dataDir = await mkdtemp(join(ctx.tmp, `sqlite-${variant}-`))
        const svc = await startMissive({ dataDir, pool: 'sqlite:', durability, profileDir: profileDir ?? undefined })
        return { svc, redis: null, pool: 'sqlite:', config: { durability, workers: workersShown(undefined, 'sqlite:') } }
      },
    })
  }
  if (stores.includes('redis')) {
    // fast = AOF everysec (the least durable setting the driver accepts as is); durable = AOF
    // always; none = no persistence at all (verify=false), the baseline for T6 (docs/benchmarks.md, targets).
    const aof: Record<string, 'always' | 'everysec' | undefined> = { fast: 'everysec', durable: 'always', none: undefined }
    const variants: StoreVariant[] = [
      { key: 'fast', label: 'durability=fast, AOF appendfsync everysec' },
      { key: 'durable', label: 'durability=durable, AOF appendfsync always', openRates: [10_000] },
      { key: 'none', label: 'no persistence (appendonly no, verify=false)' },
    ]
    out.push({
      name: 'redis',
      main: variants.find((v) => v.key === ctx.redisDurability)!,
      alts: variants.filter((v) => v.key !== ctx.redisDurability),
      layouts: [
        { key: 'worker', label: 'fresh pool, driver in a worker process' },
        { key: 'inproxy', label: 'fresh pool, driver inside the proxy (workers: 0)' },
      ],
      async start(variant, profileDir) {
        if (!hasBinary('redis-server')) throw new StartError('redis-server is not installed')
        const dir = await mkdtemp(join(ctx.tmp, `redis-${variant}-`))
        const appendfsync = variant in aof ? aof[variant] : 'everysec'
        const redis = await startRedis({ dir, appendfsync })
        try {
          const dataDir = await mkdtemp(join(ctx.tmp, `redis-md-${variant}-`))
          const durability = variant === 'durable' ? 'durable' : 'fast'
          const pool = variant === 'none' ? `${redis.url}?verify=false` : redis.url
          // The layout rows set it; every other row runs the default, `workers: "auto"`
          // (shared/auto-workers.ts), as `missive serve` on this host would.
          const workers = variant === 'inproxy' ? 0 : variant === 'worker' ? 1 : undefined
          const svc = await startMissive({ dataDir, pool, durability, workers, profileDir: profileDir ?? undefined })
          return {
            svc,
            redis,
            pool: pool.replace(/:\d+(\?|$)/, ':<port>$1'),
            config: { redis: redis.version, durability, appendonly: appendfsync ? 'yes' : 'no', appendfsync: appendfsync ?? '—', workers: workersShown(workers, pool) },
          }
        } catch (err) {
          await redis.stop()
          throw err
        }
      },
    })
  }
  if (stores.includes('zaqar')) {
    out.push({
      name: 'zaqar',
      main: {
        key: 'gthread',
        label: `Zaqar 15 (Debian) under gunicorn gthread, 2 workers × 2 threads, its Redis with AOF ${ctx.redisDurability === 'durable' ? 'always' : 'everysec'} (as Missive's Redis)`,
      },
      alts: [],
      anchor: true,
      async start(_variant, _profileDir) {
        const missing = zaqarMissing()
        if (missing) throw new StartError(missing)
        const dir = await mkdtemp(join(ctx.tmp, 'zaqar-'))
        // The same persistence as the Missive Redis it is compared with: AOF costs Redis CPU.
        const z = await startZaqar({ dir, appendfsync: ctx.redisDurability === 'durable' ? 'always' : 'everysec' })
        return {
          svc: z.svc,
          redis: z.redis,
          pool: 'redis://127.0.0.1:<port> (Zaqar\'s own)',
          config: { zaqar: z.version, server: 'gunicorn gthread', workers: 2, threads: 2, redis: z.redis.version, appendonly: 'yes', appendfsync: ctx.redisDurability === 'durable' ? 'always' : 'everysec', catalogue: 'sqlalchemy on SQLite' },
        }
      },
    })
  }
  return out
}

/** The same comparison by server CPU per message (immune to other work on the machine). */
function cpuRatio(a: ScenarioResult, b: ScenarioResult): string {
  const x = a.serverCpu?.usPerMsg
  const y = b.serverCpu?.usPerMsg
  if (!x || !y) return ''
  return `; by server CPU per message (${x} vs ${y} µs): ${Math.round((y / x) * 100)} %`
}

function evaluateTargets(stores: StoreResult[], floors: NonNullable<Report['ceilings']['helloOpen']>, durable?: Report['ceilings']['durableFloor']): TargetResult[] {
  const redis = stores.find((s) => s.store === 'redis' && s.available)
  const primary = redis ?? stores.find((s) => s.available) ?? null
  const storeName = primary ? (redis ? 'redis' : `${primary.store} (Redis pool not available)`) : null
  // A scenario counts only if it ran and most of its requests succeeded (else it measured a failure).
  const valid = (s: ScenarioResult): boolean => {
    const total = Object.values(s.result.ops).reduce((n, o) => n + o.count, 0)
    return s.result.seconds > 0 && total > 0 && (s.result.mode === 'open' || s.result.failures <= total / 2)
  }
  const sc = (id: string): ScenarioResult | undefined => primary?.scenarios.find((s) => s.id === id && valid(s))
  const out: TargetResult[] = []
  const add = (id: string, what: string, target: string, measured: string | null, pass: boolean | null): void => {
    out.push({ id, what, target, store: storeName, measured: measured ?? 'not measured in this run', status: pass === null ? 'n/a' : pass ? 'pass' : 'fail' })
  }
  const f = (v: number): string => Math.round(v).toLocaleString('en-US')
  // The main suite's open loops (`open-mixed-<rate>`), not those of a variant's own pool.
  const opens = (primary?.scenarios ?? []).filter((s) => s.result.mode === 'open' && /^open-mixed-\d+$/.test(s.id)).sort((a, b) => a.result.offered! - b.result.offered!)
  const worstP99 = (s: ScenarioResult): number => Math.max(...Object.values(s.result.ops).map((o) => o.p99))
  const cleanOpen = (s: ScenarioResult): boolean => worstP99(s) <= 10 && s.result.failures === 0
  const best = opens.filter(cleanOpen).pop()
  add(
    'R1',
    'roadmap: p99 ≤ 10 ms for every operation (open loop, mixed, batches of 10)',
    'at ≥ 10,000 msgs/s each way',
    opens.length ? (best ? `p99 ≤ 10 ms up to ${f(best.result.offered!)} msgs/s` : `p99 > 10 ms already at ${f(opens[0].result.offered!)} msgs/s`) : null,
    opens.length ? (best?.result.offered ?? 0) >= 10_000 : null,
  )
  const p10 = sc('post10')
  const cb = sc('consume-bulk')
  add('R2', 'roadmap: ≥ 10k msgs/s per tenant (one tenant, post 10 and claim+bulk delete, closed loop)', '≥ 10,000 msgs/s in and out',
    p10 && cb ? `${f(p10.result.msgsInPerS)} in, ${f(cb.result.msgsOutPerS)} out` : null,
    p10 && cb ? p10.result.msgsInPerS >= 10_000 && cb.result.msgsOutPerS >= 10_000 : null)
  add('T1', 'post, 10 per request, closed loop', '≥ 60,000 msgs/s', p10 ? `${f(p10.result.msgsInPerS)} msgs/s` : null, p10 ? p10.result.msgsInPerS >= 60_000 : null)
  const p1 = sc('post1')
  add('T2', 'post, 1 per request, closed loop', '≥ 15,000 req/s', p1 ? `${f(p1.result.reqPerS)} req/s` : null, p1 ? p1.result.reqPerS >= 15_000 : null)
  add('T3', 'claim 10 + bulk delete, closed loop', '≥ 30,000 msgs/s', cb ? `${f(cb.result.msgsOutPerS)} msgs/s` : null, cb ? cb.result.msgsOutPerS >= 30_000 : null)
  // The floor at the same rate says how much of a tail is the machine's rather than ours.
  const floorP99 = (rate: number, s?: ScenarioResult): string => {
    const h = floors.find((x) => x.msgsPerS === rate)?.result.ops.hello
    // On a durable pool every write waits for its fsync: how often the disk took over 5 ms.
    const fsyncs = s?.redisEvents?.['aof-fsync-always']
    const disk = fsyncs ? `; the pool's fsyncs over 5 ms in ${fsyncs.seconds} s of the window, worst ${fsyncs.worst} ms` : ''
    const d = durable?.msgsPerS === rate ? durable : undefined
    const dp99 = d?.result.ops.hello?.p99
    const dfloor = d && dp99 !== undefined ? `; durable floor, one ${f(d.bytes)}-byte write per request on a Redis with AOF always: p99 ${dp99.toFixed(1)} ms` : ''
    return h ? ` (hello-world floor at the same request rate: p99 ${h.p99.toFixed(1)} ms${dfloor}${disk})` : ''
  }
  const p99s = (s: ScenarioResult): string =>
    Object.entries(s.result.ops).map(([k, v]) => `${k} p99 ${v.p99 < 100 ? v.p99.toFixed(1) : Math.round(v.p99)} ms`).join(', ') + (s.result.failures ? `, ${s.result.failures} failed` : '')
  const o5 = opens.find((s) => s.result.offered === 5_000)
  add('M3', 'issue 3 minimum: open loop, mixed, batches of 10, 5k msgs/s in and out, one tenant', 'p99 ≤ 10 ms for every request type',
    o5 ? p99s(o5) + floorP99(5_000) : null, o5 ? cleanOpen(o5) : null)
  // T4 is issue 19's: on a durable pool (AOF always), here a fresh one; the main suite's 10k row,
  // on its grown pool of the main durability, when the durable pool was not measured.
  const o10d = sc('open-mixed-10000-durable')
  const o10 = o10d ?? opens.find((s) => s.result.offered === 10_000)
  const t4on = o10d ? 'fresh durable pool (AOF always): ' : "the suite's own pool: "
  add('T4', 'open loop, mixed, batches of 10, 10k msgs/s in and out, one tenant, durable pool', 'p99 ≤ 10 ms for every request type',
    o10 ? t4on + p99s(o10) + floorP99(10_000, o10) : null, o10 ? cleanOpen(o10) : null)
  {
    const z = stores.find((s) => s.store === 'zaqar')
    const rows = anchorRatios(stores)
    const measured = rows.filter((r) => r.ratios.length > 0)
    if (z?.available && measured.length) {
      const worst = Math.min(...measured.flatMap((r) => r.ratios.map((x) => x.ratio)))
      add('T5', '≥ 10× Zaqar 15 on every closed-loop scenario, Redis and SQLite (same run)', '≥ 10×',
        measured.map((r) => `${r.id} ${r.ratios.map((x) => `${x.store} ${x.ratio.toFixed(1)}×${x.cpu === null ? '' : ` (CPU ${x.cpu.toFixed(1)}×)`}`).join(' / ')}`).join('; '), worst >= 10 && measured.length === ANCHOR_SCENARIOS.length)
    } else {
      add('T5', '≥ 10× Zaqar 15 on every closed-loop scenario (same run)', '≥ 10×', `Zaqar was not measured in this run (${z ? z.reason ?? 'unavailable' : 'not in --stores'}): no ratio`, null)
    }
  }
  // T6 compares the durable rate with the non-durable one.
  const [dur, non, t6label] = redis
    ? [sc('post10-durable'), sc('post10-none'), 'AOF always vs no persistence']
    : [sc('post10'), sc('post10-fast'), 'SQLite durable vs fast']
  if (dur && non) {
    const r = dur.result.msgsInPerS / Math.max(1, non.result.msgsInPerS)
    add('T6', `durable vs non-durable, post 10 (${t6label})`, '≥ 60 %', `${f(dur.result.msgsInPerS)} vs ${f(non.result.msgsInPerS)} msgs/s = ${Math.round(r * 100)} %${cpuRatio(dur, non)}`, r >= 0.6)
  } else add('T6', `durable vs non-durable, post 10 (${t6label})`, '≥ 60 %', null, null)
  const q1 = sc('post10-q1')
  const qm = primary?.scenarios.find((s) => /^post10-q\d{3,}$/.test(s.id))
  if (q1 && qm) {
    const r = qm.result.msgsInPerS / Math.max(1, q1.result.msgsInPerS)
    add('T7', `${qm.knobs.queues} queues vs 1 queue, post 10`, '≥ 90 %', `${f(qm.result.msgsInPerS)} vs ${f(q1.result.msgsInPerS)} msgs/s = ${Math.round(r * 100)} %${cpuRatio(qm, q1)}`, r >= 0.9)
  } else add('T7', 'many queues vs 1 queue, post 10', '≥ 90 %', null, null)
  return out
}

async function main(): Promise<void> {
  let a
  try {
    a = parseArgs(process.argv.slice(2), BENCH_FLAGS)
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`bench: ${err.message}\n\nUsage: npm run bench -- [flags]\n${helpText(BENCH_FLAGS)}\n`)
      process.exit(2)
    }
    throw err
  }
  if (a.help) {
    process.stdout.write(`Usage: npm run bench -- [flags]   (or: node dist/perf/bench.js [flags])\n\n${helpText(BENCH_FLAGS)}\n`)
    return
  }
  const quick = a.quick === true
  const started = new Date()
  const date = started.toISOString().slice(0, 10)
  const outDir = resolve(ROOT, String(a.out))
  await mkdir(outDir, { recursive: true })
  // Read the commit once, at the start: HEAD may move while the run lasts.
  const commit = {
    hash: git(['rev-parse', 'HEAD']) || 'unknown',
    short: git(['rev-parse', '--short', 'HEAD']) || 'nogit',
    dirty: git(['status', '--porcelain', '--untracked-files=no']) !== '',
    subject: git(['log', '-1', '--format=%s']),
  }
  const short = commit.short
  const damon = describeDamon()
  const damonPaused = a['pause-damon'] === true
  const openOnly = a.only === 'open'
  const redisDurability = String(a['redis-durability'])
  if (redisDurability !== 'fast' && redisDurability !== 'durable') throw new UsageError('--redis-durability must be fast or durable')
  const suffix = `${quick ? '-quick' : ''}${openOnly ? '-open' : ''}${redisDurability === 'durable' ? '-redis-durable' : ''}${damonPaused ? '-damon-paused' : ''}`
  const base = join(outDir, `${date}-${short}${suffix}`)
  const tmp = await mkdtemp(join(os.tmpdir(), 'mbench-'))
  const clk = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100
  const ctx: Ctx = {
    quick,
    openOnly,
    redisDurability,
    durationS: Number(a.duration ?? (quick ? 1 : 8)),
    connections: Number(a.connections),
    openConnections: Number(a['open-connections']),
    queues: Number(a.queues),
    tenants: Number(a.tenants),
    size: Number(a.size),
    openDurationS: Number(a['open-duration'] ?? (quick ? 1 : 15)),
    rates: ((a.rates as string[] | undefined) ?? (quick ? ['1000'] : ['1000', '5000', '10000', '20000'])).map(Number),
    manyQueues: Number(a['many-queues']),
    tmp,
    profileRoot: a.profile ? join(outDir, `profiles-${date}`) : null,
    helloEngine: null,
    helloAutocannon: null,
    redisWrites: null,
    notes: [],
    clkTck: clk,
  }
  const noisyBacklog = Number(a['noisy-backlog'])
  const noisyDuration = Number(a['noisy-duration'])
  const noisyBatch = Number(a['noisy-batch'])
  const noisyAttackRate = Number(a['noisy-attack-rate'])
  if (a.only === 'migration') {
    await runMigrationOnly(a, tmp, base, { commit, started, short })
    return
  }
  if (a.only !== undefined && a.only !== 'open') {
    if (a.only !== 'noisy') throw new UsageError(`--only: unknown scenario "${String(a.only)}" (known: open, noisy, migration)`)
    // The noisy-neighbour scenario alone: no ceilings, no standard suite.
    const md: string[] = [`# Noisy neighbour — ${started.toISOString().slice(0, 10)} — ${short}${commit.dirty ? ' (dirty tree)' : ''}`, '']
    const json: Record<string, unknown> = { commit, startedAt: started.toISOString(), loadavgStart: os.loadavg() }
    try {
      for (const setup of storeSetups(ctx, (a.stores as string[]) ?? []).filter((x) => x.anchor !== true)) {
        const r = await runNoisyStore(ctx, setup, noisyBacklog, noisyDuration, noisyBatch, noisyAttackRate)
        json[setup.name] = r
        md.push('error' in r ? `${setup.name}: not measured: ${r.error}\n` : noisyMarkdown(setup.name, r))
      }
    } finally {
      killAll()
      await rm(tmp, { recursive: true, force: true }).catch(() => undefined)
    }
    json.loadavgEnd = os.loadavg()
    const file = `${base}-noisy${noisyAttackRate > 0 ? `-paced${noisyAttackRate}` : ''}`
    await writeFile(`${file}.json`, `${JSON.stringify(json, null, 2)}\n`)
    await writeFile(`${file}.md`, `${md.join('\n')}\n`)
    process.stdout.write(`${md.join('\n')}\n`)
    log(`wrote ${relative(ROOT, `${file}.md`)}`)
    return
  }
  // Paused before anything starts, restored in the `finally` below (and on exit or a signal).
  const restoreDamon = damonPaused ? pauseDamon() : (): void => undefined
  const loadStart = os.loadavg()
  const t0 = performance.now()
  const ceilings: Report['ceilings'] = {
    hello: { engine: null, autocannon: null, wrk: null },
    redis: { ioredis: null, redisBenchmark: null, available: false },
  }
  const stores: StoreResult[] = []
  const noisy: NonNullable<Report['noisy']> = []
  try {
    if (!existsSync(join(ROOT, 'dist/perf/uws-hello.js'))) throw new Error('dist/perf is missing: run "npm run build" first (npm run bench does)')
    // Ceiling 1: the uWS hello-world, through each load generator.
    const hello = await startHello()
    try {
      const hd = quick ? 1 : 5
      log('ceiling: uWS hello-world (bench engine) …')
      ceilings.hello.engine = await engineHello(hello.url, ctx.connections, hd)
      ctx.helloEngine = ceilings.hello.engine.reqPerS
      log(`ceiling: engine ${ctx.helloEngine} req/s`)
      // The open-loop floor, at the request rate of each open-loop scenario.
      ceilings.helloOpen = []
      for (const rate of ctx.rates) {
        const { batch, claimLimit } = baseLoad(ctx, hello.url, {})
        const reqPerS = openRequestRate(rate, batch, claimLimit)
        log(`ceiling: open-loop floor at ${reqPerS} req/s …`)
        // A server that does nothing has a steady tail: 8 s at each rate measures it as well as the
        // open-loop window does, and keeps the full suite under 10 minutes.
        const result = await engineHelloOpen(hello.url, reqPerS, ctx.openConnections, Math.min(ctx.openDurationS, FLOOR_MAX_S), ctx.quick ? 0.3 : 2)
        ceilings.helloOpen.push({ msgsPerS: rate, result })
      }
      if (!quick && !openOnly) {
        log('ceiling: uWS hello-world (autocannon, wrk) …')
        const ac = await autocannonRun({ url: hello.url, connections: ctx.connections, durationS: hd })
        ceilings.hello.autocannon = { tool: 'autocannon', reqPerS: ac.reqPerS, p50: ac.p50, p99: ac.p99 } satisfies ThroughputCeiling
        ctx.helloAutocannon = ac.reqPerS
        ceilings.hello.wrk = await wrkHello(hello.url, ctx.connections, hd)
        log(`ceiling: autocannon ${ac.reqPerS} req/s, wrk ${ceilings.hello.wrk?.reqPerS ?? 'n/a'} req/s`)
      }
    } finally {
      await hello.stop()
    }
    // Ceiling 2: raw Redis pipelined writes.
    if (openOnly) {
      ceilings.redis.reason = 'not measured with --only open'
    } else if (hasBinary('redis-server')) {
      const dir = await mkdtemp(join(tmp, 'redis-ceiling-'))
      const r = await startRedis({ dir })
      try {
        log('ceiling: Redis pipelined writes …')
        ceilings.redis.ioredis = await redisPipelined(r.url, quick ? 1 : 4)
        ctx.redisWrites = ceilings.redis.ioredis.writesPerS
        if (!quick) ceilings.redis.redisBenchmark = await redisBenchmark(r.port, 400_000)
        ceilings.redis.available = true
        log(`ceiling: ioredis ${ctx.redisWrites} writes/s, redis-benchmark ${ceilings.redis.redisBenchmark?.writesPerS ?? 'n/a'}`)
      } catch (err) {
        ceilings.redis.reason = (err as Error).message
      } finally {
        await r.stop()
      }
    } else {
      ceilings.redis.reason = 'redis-server is not installed'
    }

    const setups = storeSetups(ctx, (a.stores as string[]) ?? [])
    // Zaqar runs in step with one Missive store (perf/lib/pacer.ts): the Redis pool, which the
    // targets are measured on, else the first store. Its result is reported last, as before.
    const anchorSetup = openOnly ? undefined : setups.find((x) => x.anchor === true)
    const leader = anchorSetup ? (setups.find((x) => x.name === 'redis') ?? setups.find((x) => x.anchor !== true)) : undefined
    let anchorRun: Promise<StoreResult> | null = null
    for (const setup of setups) {
      if (openOnly && setup.anchor === true) {
        stores.push({ store: setup.name, pool: '', available: false, reason: 'Zaqar runs the closed-loop scenarios only; not with --only open', config: {}, scenarios: [] })
        continue
      }
      if (setup === anchorSetup && leader) continue
      if (setup === leader && anchorSetup) {
        const pacer = new Pacer()
        // Zaqar starts (and smoke-tests) first, so its start-up shares no measured window.
        anchorRun = runStore(ctx, anchorSetup, { anchor: pacer })
        await pacer.ready
        stores.push(await runStore(ctx, setup, { lead: { pacer, anchorRun } }))
        // Had the suite stopped early, Zaqar ran the rest unpaired: nothing may overlap it.
        await anchorRun
      } else {
        stores.push(await runStore(ctx, setup))
      }
      if (!quick && !openOnly && setup.anchor !== true) {
        const r = await runNoisyStore(ctx, setup, noisyBacklog, noisyDuration, noisyBatch, noisyAttackRate)
        if ('error' in r) ctx.notes.push(`${setup.name}: noisy neighbour not measured: ${r.error}`)
        else noisy.push({ store: setup.name, result: r })
      }
    }

    if (anchorRun) {
      const z = await anchorRun
      stores.push(z)
      if (z.available) {
        ctx.notes.push(
          `Zaqar ran in step with the ${leader!.name} store: each scenario compared with it ran on Zaqar right after it ran on Missive's ${leader!.name} pool ` +
            "(once any AOF rewrite of that pool's Redis had ended), so those ratios compare windows seconds apart on a machine whose speed drifts within minutes; " +
            'the other stores ran before it.',
        )
      }
    }

    if (!quick && !openOnly) {
      // The engine's ceiling again at the end: how much did the machine drift during the run?
      const hello2 = await startHello()
      try {
        const again = await engineHello(hello2.url, ctx.connections, 3)
        const drift = again.reqPerS / (ctx.helloEngine ?? again.reqPerS) - 1
        ctx.notes.push(`hello-world ceiling re-measured at the end: ${Math.round(again.reqPerS).toLocaleString('en-US')} req/s (${drift >= 0 ? '+' : ''}${(drift * 100).toFixed(0)} % vs the start) — a measure of machine drift during the run.`)
      } finally {
        await hello2.stop()
      }
    }
  } finally {
    killAll()
    restoreDamon()
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined)
  }

  const loadEnd = os.loadavg()
  {
    // How much of the machine did our processes get, while how much else was running?
    const shares = stores.flatMap((s) => s.scenarios.map((x) => Object.values(x.cpu).reduce((n: number, v) => n + (v ?? 0), 0))).filter((v) => v > 0)
    if (shares.length) {
      const avg = shares.reduce((a, b) => a + b, 0) / shares.length
      const cores = os.cpus().length
      const load = (loadStart[0] + loadEnd[0]) / 2
      if (load > cores * 0.75 && avg < cores * 0.75) {
        ctx.notes.push(
          `During the scenarios, Missive, Redis and the load generator together kept only ${avg.toFixed(2)} of the ${cores} cores busy on average, ` +
            `while the 1-minute load average was ~${load.toFixed(1)}: other processes competed for the cores, so throughput and latency here are pessimistic — ` +
            'the CPU cost per message ("srv µs/msg") and the ratios are the comparable numbers.',
        )
      }
    }
  }
  if (loadStart[0] > 0.5) {
    ctx.notes.push(`The machine was already busy when the run started (1-minute load average ${loadStart[0].toFixed(2)} on ${os.cpus().length} cores): other work shared the cores, so absolute numbers are noisy — compare the ratios.`)
  }
  if (!damonPaused && kdamonds().some((k) => k.state === 'on')) {
    ctx.notes.push(
      `The host kernel's DAMON monitor was running (${damon}). On these paravirtualised machines its page sampling adds tail latency to the process ` +
        'that holds the most memory — a Redis with a backlog: open-loop p99 was 2–6× higher with it on than paused (same commit, one run after the other) ' +
        '(docs/benchmarks.md, "Host memory monitoring"). `--pause-damon` measures without it.',
    )
  }
  for (const s of stores) if (!s.available) ctx.notes.push(`${s.store}: not available (${s.reason})`)
  const report: Report = {
    reportVersion: REPORT_VERSION,
    kind: quick ? 'quick' : openOnly ? 'open' : 'full',
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    wallSeconds: round((performance.now() - t0) / 1000, 1),
    commit,
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memGiB: round(os.totalmem() / 2 ** 30, 1),
      node: process.version,
      platform: `${os.platform()} ${os.arch()}`,
      release: os.release(),
      loadavgStart: loadStart.map((v) => round(v, 2)),
      loadavgEnd: loadEnd.map((v) => round(v, 2)),
      damon,
      damonPaused,
    },
    knobs: {
      quick,
      durationS: ctx.durationS,
      connections: ctx.connections,
      openConnections: ctx.openConnections,
      openDurationS: ctx.openDurationS,
      queues: ctx.queues,
      tenants: ctx.tenants,
      messageBytes: ctx.size,
      batch: 10,
      claimLimit: 10,
      rates: ctx.rates,
      manyQueues: ctx.manyQueues,
      stores: a.stores,
      redisDurability,
      profile: a.profile === true,
    },
    ceilings: { ...ceilings, durableFloor: ctx.durableFloor },
    stores,
    targets: evaluateTargets(stores, ceilings.helloOpen ?? [], ctx.durableFloor),
    noisy,
    notes: ctx.notes,
    files: {
      json: relative(ROOT, `${base}.json`),
      md: relative(ROOT, `${base}.md`),
      svg: relative(ROOT, `${base}.svg`),
      profiles: ctx.profileRoot ? relative(ROOT, ctx.profileRoot) : null,
    },
  }
  await writeFile(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`)
  await writeFile(`${base}.svg`, renderSvg(report))
  await writeFile(`${base}.md`, renderMarkdown(report))
  log(`wrote ${report.files.json}, ${report.files.md}, ${report.files.svg} in ${report.wallSeconds} s`)
  process.stdout.write(`${base}.json\n`)
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    killAll()
    process.stderr.write(`bench: ${(err as Error)?.stack ?? String(err)}\n`)
    process.exit(1)
  },
)
