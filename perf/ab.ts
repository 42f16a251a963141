#!/usr/bin/env node
/**
 * Same-run A/B of two builds on the closed-loop hot paths: post 1, post 10 and mixed, on the
 * embedded SQLite store and on a Redis pool, with server CPU per message per process.
 *
 *   git archive <base> | tar -x -C /tmp/base && ln -s $PWD/node_modules /tmp/base/ && (cd /tmp/base && npm run build)
 *   node dist/perf/ab.js --builds /tmp/base,. --scenarios post1,post10,mixed --stores sqlite,redis --duration 4 --rounds 2
 *
 * Each round runs every build once per store (A, B, then B, A in the next round, so neither
 * always goes first), each on a fresh Missive (and a fresh Redis for the Redis pool) started
 * exactly as the bench starts its main variant (perf/bench.ts), after 2 s of unrecorded warm-up.
 * With `--profile <dir>` the proxy and the worker of every start write CPU profiles there
 * (`<build>-<store>-<round>-{proxy,worker}.cpuprofile`) and the top self-time functions of each
 * are printed. Bench runs are exclusive on a shared machine: run it under
 * `flock <lock> node dist/perf/ab.js …`.
 */
import { mkdtemp, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join, resolve } from 'node:path'
import { existsSync } from 'node:fs'
import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { helpText, parseArgs, UsageError, type FlagSpec } from './lib/args.js'
import { createQueues, runLoad, standardLoad, type LoadOptions, type LoadResult } from './lib/load.js'
import { awaitHttp, capture, cleanEnv, cpuSeconds, freePort, missiveRoles, redisCommand, startRedis, stopChild, track, type RedisService } from './lib/procs.js'

const FLAGS: FlagSpec[] = [
  { name: 'builds', type: 'list', default: ['.'], help: 'repository roots to compare (each with a built dist/), first is A; `root+NAME=value` adds a MISSIVE_* setting for that build (e.g. `.+MISSIVE_DURABILITY=fast`), `root+--flag` a Node flag for its processes (e.g. `.+--max-semi-space-size=64`), `root+redis:name=value` a directive for its redis-server after the shipped config (e.g. `.+redis:rdbcompression=no`)' },
  { name: 'scenarios', type: 'list', default: ['post1', 'post10', 'mixed'], help: 'post1, post10, mixed, consume (claim 10 + bulk delete of what the scenarios before it posted: put it after post10), q1 and many (post 10 on 1 queue, and on 10,000 queues created first: T7)' },
  { name: 'stores', type: 'list', default: ['sqlite'], help: 'sqlite, redis, redis-socket (the same Redis pool reached over a Unix socket: `redis:/path`)' },
  { name: 'duration', type: 'number', default: 4, help: 'seconds per scenario' },
  { name: 'rounds', type: 'number', default: 2, help: 'A/B rounds (alternating order)' },
  { name: 'sqlite-durability', type: 'string', default: 'durable', help: 'durability of the SQLite pool: durable (fsync before 201, as the bench) or fast' },
  { name: 'connections', type: 'number', default: 32, help: 'closed-loop connections' },
  { name: 'profile', type: 'string', default: undefined, help: 'write CPU profiles of the proxy and the worker to this directory' },
  { name: 'top', type: 'number', default: 15, help: 'functions listed per profile' },
  { name: 'help', type: 'boolean', default: false, help: 'show this help' },
]

interface Sample {
  build: string
  store: string
  scenario: string
  r: LoadResult
  cpu: { proxy: number; workers: number; redis: number; loadgen: number }
  /** Redis stores: script calls (EVALSHA and EVAL) Redis ran during the scenario. */
  scriptCalls?: number
}

/** Script calls (EVALSHA + EVAL) the Redis on `port` has run since it started (`INFO commandstats`). */
async function scriptCalls(port: number): Promise<number> {
  const stats = await redisCommand(port, ['INFO', 'commandstats'])
  let n = 0
  for (const m of stats.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) n += Number(m[1])
  return n
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100

/** CPU seconds of a process (perf/lib/procs.ts), 0 once it is gone. */
const cpuOf = (pid: number): number => cpuSeconds(pid, CLK_TCK) ?? 0

/**
 * A `--builds` entry, `root+part+part…`: each part is a Node flag (`--flag`) of `missive serve`,
 * which the supervisor passes on to the proxy and the workers; a directive for that build's
 * redis-server after the shipped config (`redis:name=value`); or a setting (`NAME=value`).
 */
function parseBuild(spec: string): { root: string; env: Record<string, string>; redisArgs: string[]; nodeFlags: string[] } {
  const [root, ...parts] = spec.split('+')
  const out = { root: resolve(root!), env: {} as Record<string, string>, redisArgs: [] as string[], nodeFlags: [] as string[] }
  for (const part of parts) {
    if (part.startsWith('--')) {
      out.nodeFlags.push(part)
      continue
    }
    const eq = part.indexOf('=')
    const [name, value] = [part.slice(0, eq), part.slice(eq + 1)]
    if (name.startsWith('redis:')) out.redisArgs.push(`--${name.slice('redis:'.length)}`, value)
    else out.env[name] = value
  }
  return out
}

async function startBuild(root: string, env: Record<string, string>, nodeArgs: string[]) {
  const port = await freePort()
  const entry = join(root, 'dist/bin/missive.js')
  if (!existsSync(entry)) throw new UsageError(`${entry} is missing: build ${root} first`)
  const child = spawn(process.execPath, [...nodeArgs, entry, 'serve'], {
    cwd: root,
    env: cleanEnv({ MISSIVE_BIND: '127.0.0.1', MISSIVE_PORT: String(port), MISSIVE_LOG_LEVEL: 'warn', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  track(child, true)
  const output = capture(child)
  const url = `http://127.0.0.1:${port}`
  const up = await awaitHttp({ child, url }, 30_000)
  if (up !== 'up') throw new Error(`${root}: Missive did not start (${up}): ${output().slice(-600)}`)
  return { child, url, output, stop: () => stopChild(child, 20_000, true) }
}

/** The queue count of the `many` scenario, as the bench's T7 row. */
const MANY_QUEUES = 10_000

function load(url: string, scenario: string, conns: number, durationS: number): LoadOptions {
  const base = standardLoad(url, durationS, conns)
  if (scenario === 'post1') return { ...base, producers: conns, batch: 1 }
  if (scenario === 'post10') return { ...base, producers: conns, batch: 10 }
  if (scenario === 'mixed') return { ...base, producers: Math.floor(conns / 2), consumers: conns - Math.floor(conns / 2) }
  // Claims what the scenarios before it posted: list it after post10 (as the bench runs it).
  if (scenario === 'consume') return { ...base, consumers: conns, claimLimit: 10, deleteMode: 'bulk' }
  // T7's pair (perf/bench.ts): post 10 on one queue, and over MANY_QUEUES queues created first.
  if (scenario === 'q1') return { ...base, producers: conns, batch: 10, queues: 1, prefix: 'q1' }
  if (scenario === 'many') return { ...base, producers: conns, batch: 10, queues: MANY_QUEUES, prefix: 'many' }
  throw new UsageError(`unknown scenario ${scenario}`)
}

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
}

/**
 * Top self-time functions of a .cpuprofile, as shares of the samples that were not idle:
 * `(program)` is native time outside JavaScript (the event loop, reads, syscalls not made from a
 * JS call), `(garbage collector)` the GC's.
 */
export async function topSelf(file: string, n: number): Promise<string[]> {
  const p = JSON.parse(await readFile(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[] }
  const byNode = new Map<number, ProfileNode>(p.nodes.map((x) => [x.id, x]))
  const counts = new Map<string, number>()
  let busy = 0
  for (const id of p.samples) {
    const node = byNode.get(id)!
    const fn = node.callFrame.functionName || '(anonymous)'
    if (fn === '(idle)') continue
    busy++
    const where = node.callFrame.url ? `${basename(node.callFrame.url)}:${node.callFrame.lineNumber + 1}` : ''
    const key = `${fn} ${where}`.trim()
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `${((100 * v) / busy).toFixed(1).padStart(5)} %  ${k}`)
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2), FLAGS)
  if (a.help) {
    process.stdout.write(`usage: node dist/perf/ab.js [flags]\n${helpText(FLAGS)}\n`)
    return
  }
  const builds = a.builds as string[]
  const specs = new Map(builds.map((b) => [b, parseBuild(b)]))
  const rootOf = (b: string): string => specs.get(b)!.root
  const envOf = (b: string): Record<string, string> => specs.get(b)!.env
  const redisArgsOf = (b: string): string[] => specs.get(b)!.redisArgs
  const nodeFlagsOf = (b: string): string[] => specs.get(b)!.nodeFlags
  const scenarios = a.scenarios as string[]
  const stores = a.stores as string[]
  const rounds = a.rounds as number
  const conns = a.connections as number
  const durationS = a.duration as number
  const profileDir = a.profile === undefined ? undefined : resolve(a.profile as string)
  if (profileDir) await mkdir(profileDir, { recursive: true })
  const samples: Sample[] = []
  const label = (b: string): string => (builds.length > 1 ? String.fromCharCode(65 + builds.indexOf(b)) : 'A')
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? builds : [...builds].reverse()
    for (const store of stores) {
      for (const build of order) {
        const dir = await mkdtemp(join(tmpdir(), 'missive-ab-'))
        let redis: RedisService | null = null
        const profOut = profileDir ? await mkdtemp(join(profileDir, 'raw-')) : undefined
        try {
          let pool = 'sqlite:'
          const env: Record<string, string> = { MISSIVE_DATA_DIR: dir }
          if (store === 'redis' || store === 'redis-socket') {
            await mkdir(join(dir, 'redis'))
            const unixSocket = store === 'redis-socket'
            redis = await startRedis({ dir: join(dir, 'redis'), appendfsync: 'everysec', unixSocket, extra: redisArgsOf(build) })
            pool = unixSocket ? redis.socketUrl! : redis.url
            env.MISSIVE_DURABILITY = 'fast'
            env.MISSIVE_WORKERS = '1'
          } else env.MISSIVE_DURABILITY = a['sqlite-durability'] as string
          env.MISSIVE_DEFAULT_POOL = pool
          const svc = await startBuild(rootOf(build), { ...env, ...envOf(build) }, [...nodeFlagsOf(build), ...(profOut ? ['--cpu-prof', `--cpu-prof-dir=${profOut}`] : [])])
          const roles = missiveRoles(svc.child.pid!)
          await runLoad({ ...load(svc.url, 'post10', 8, 2), prefix: 'warmup' })
          for (const scenario of scenarios) {
            if (scenario === 'many') await createQueues(svc.url, MANY_QUEUES, 'many', conns)
            const s0 = { p: roles.proxy.reduce((n, x) => n + cpuOf(x), 0), w: roles.workers.reduce((n, x) => n + cpuOf(x), 0), r: redis ? cpuOf(redis.pid) : 0, l: process.cpuUsage() }
            const calls0 = redis ? await scriptCalls(redis.port) : 0
            const t0 = performance.now()
            const r = await runLoad(load(svc.url, scenario, conns, durationS))
            const secs = (performance.now() - t0) / 1000
            const l = process.cpuUsage(s0.l)
            const cpu = {
              proxy: (roles.proxy.reduce((n, x) => n + cpuOf(x), 0) - s0.p) / secs,
              workers: (roles.workers.reduce((n, x) => n + cpuOf(x), 0) - s0.w) / secs,
              redis: ((redis ? cpuOf(redis.pid) : 0) - s0.r) / secs,
              loadgen: (l.user + l.system) / 1e6 / secs,
            }
            const sample: Sample = { build, store, scenario, r, cpu }
            if (redis) sample.scriptCalls = (await scriptCalls(redis.port)) - calls0
            samples.push(sample)
            process.stderr.write(`${label(build)} ${store} ${scenario} round ${round + 1}: ${line(sample)}\n`)
          }
          await svc.stop()
          if (profOut) {
            await new Promise((r) => setTimeout(r, 300))
            for (const f of await readdir(profOut)) {
              const m = /^CPU\.\d+\.\d+\.(\d+)\.(\d+)\./.exec(f)
              if (!m) continue
              const pid = Number(m[1])
              const role = roles.proxy.includes(pid) ? 'proxy' : roles.workers.includes(pid) ? `worker${roles.workers.indexOf(pid)}` : 'supervisor'
              const to = join(profileDir!, `${label(build)}-${store}-${round + 1}-${role}-${pid}-${m[2]}.cpuprofile`)
              await rename(join(profOut, f), to)
              if (role === 'supervisor') continue
              process.stdout.write(`\n${label(build)} ${store} round ${round + 1} ${role}: top self time (${basename(to)})\n`)
              for (const t of await topSelf(to, a.top as number)) process.stdout.write(`  ${t}\n`)
            }
            await rm(profOut, { recursive: true, force: true })
          }
        } finally {
          await redis?.stop().catch(() => undefined)
          await rm(dir, { recursive: true, force: true })
        }
      }
    }
  }
  process.stdout.write('\n| build | store | scenario | req/s | msgs/s | p99 ms | proxy µs/msg | worker µs/msg | redis µs/msg | script calls/req | loadgen cores |\n|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n')
  for (const store of stores) {
    for (const scenario of scenarios) {
      for (const build of builds) {
        const ss = samples.filter((s) => s.build === build && s.store === store && s.scenario === scenario)
        for (const s of ss) process.stdout.write(`| ${label(build)} | ${store} | ${scenario} | ${row(s)} |\n`)
      }
    }
  }
  process.stdout.write(`\nbuilds: ${builds.map((b) => `${label(b)} = ${b}`).join(', ')}\n`)
}

function msgs(s: Sample): number {
  return s.r.msgsInPerS + s.r.msgsOutPerS
}

function p99(s: Sample): number {
  return Math.max(...Object.values(s.r.ops).map((o) => o.p99))
}

/** Redis script calls per request (the requests coalesced into one call, inverted), or '—'. */
function callsPerRequest(s: Sample): string {
  const reqs = s.r.reqPerS * s.r.seconds
  return s.scriptCalls === undefined || reqs === 0 ? '—' : (s.scriptCalls / reqs).toFixed(2)
}

function row(s: Sample): string {
  const m = msgs(s)
  const us = (c: number): string => (m > 0 ? ((c * 1e6) / m).toFixed(1) : '—')
  return [Math.round(s.r.reqPerS).toLocaleString('en-US'), Math.round(m).toLocaleString('en-US'), p99(s).toFixed(1), us(s.cpu.proxy), us(s.cpu.workers), us(s.cpu.redis), callsPerRequest(s), s.cpu.loadgen.toFixed(2)].join(' | ')
}

function line(s: Sample): string {
  const m = msgs(s)
  return `${Math.round(s.r.reqPerS)} req/s, ${Math.round(m)} msgs/s, p99 ${p99(s).toFixed(1)} ms, failures ${s.r.failures}, µs/msg proxy ${((s.cpu.proxy * 1e6) / m).toFixed(1)} worker ${((s.cpu.workers * 1e6) / m).toFixed(1)} redis ${((s.cpu.redis * 1e6) / m).toFixed(1)}, script calls/req ${callsPerRequest(s)}`
}

// Run only as the entry point: `topSelf` can be imported without starting a benchmark.
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof UsageError ? err.message : ((err as Error).stack ?? String(err))}\n`)
    process.exit(err instanceof UsageError ? 2 : 1)
  })
}
