/**
 * The processes a bench run starts — Missive (supervisor + proxy + workers), redis-server, the
 * uWS hello-world — tracked in one registry so every one of them is killed, by pid, whatever
 * happens: normal end, an exception, SIGINT/SIGTERM, or process exit.
 *
 * The primitives (spawning `missive serve` or `redis-server` on loopback and waiting until it
 * answers, capturing output, reading a supervisor's children from /proc) are also the test
 * suite's (tests/helpers/index.ts): tests and bench start the same processes the same way, and
 * differ only in who stops them (a test's teardown, or this registry).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The repository root (this file is perf/lib/procs.ts or dist/perf/lib/procs.js): the nearest
 * directory with a package.json and a tsconfig.json (tsc copies package.json into dist/ when a
 * test imports it, so package.json alone would stop at dist/).
 */
export const ROOT = (() => {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!(existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'tsconfig.json'))) && dirname(dir) !== dir) dir = dirname(dir)
  return dir
})()

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

export interface Tracked {
  child: ChildProcess
  /** Started in its own process group: kill the whole group. */
  group: boolean
}

const registry = new Set<Tracked>()
let handlersInstalled = false

/** SIGKILLs everything still running (synchronous: usable from an 'exit' handler). */
export function killAll(): void {
  for (const t of registry) {
    const pid = t.child.pid
    if (pid === undefined || t.child.exitCode !== null || t.child.signalCode !== null) continue
    try {
      process.kill(t.group ? -pid : pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  registry.clear()
}

function installHandlers(): void {
  if (handlersInstalled) return
  handlersInstalled = true
  process.on('exit', killAll)
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`bench: ${sig}: stopping every child\n`)
      killAll()
      process.exit(130)
    })
  }
}

/** Registers `child` so that killAll (and exit or a signal) kills it; `group`: its whole process group. */
export function track(child: ChildProcess, group: boolean): Tracked {
  installHandlers()
  const t = { child, group }
  registry.add(t)
  child.once('exit', () => registry.delete(t))
  return t
}

/** Resolves when `child` has exited, with its code and signal. */
export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode })
  }
  return new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })))
}

/** Keeps the last `max` characters a child printed. */
export function capture(child: ChildProcess, max = 16 * 1024): () => string {
  let out = ''
  const add = (chunk: Buffer): void => {
    out += chunk.toString('utf8')
    if (out.length > max) out = out.slice(out.length - max)
  }
  child.stdout?.on('data', add)
  child.stderr?.on('data', add)
  return () => out
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo
      srv.close(() => resolvePort(port))
    })
  })
}

/**
 * CPU seconds (user + system) of a process, from /proc, or with `children` those of its children
 * it has reaped (`cutime + cstime`); null when gone.
 */
export function cpuSeconds(pid: number, clkTck: number, children = false): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const at = children ? 13 : 11
    return (Number(fields[at]) + Number(fields[at + 1])) / clkTck
  } catch {
    return null
  }
}

/** Environment for children: no loader flags from a test runner (tsx, tap) leak in. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra }
  delete env.NODE_OPTIONS
  return env
}

export interface Service {
  pid: number
  port: number
  url: string
  output(): string
  /** Orderly stop (SIGTERM, then SIGKILL after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<void>
}

export interface MissiveService extends Service {
  /** Proxy and worker pids (from /proc), for naming CPU profiles. */
  roles(): { proxy: number[]; workers: number[] }
}

export class StartError extends Error {}

/**
 * Starts `node dist/bin/missive.js serve` on a free port, data in `dataDir`. With `profileDir`,
 * the supervisor runs with `--cpu-prof` and passes its execArgv on to the proxy and the workers,
 * so each writes a `.cpuprofile` there when it exits. Throws `StartError` (with the service's own
 * words) when it does not come up.
 */
export async function startMissive(opts: {
  dataDir: string
  pool: string
  durability?: 'durable' | 'fast'
  workers?: number
  profileDir?: string
  timeoutMs?: number
  /** More environment (`MISSIVE_*` settings). */
  env?: Record<string, string>
}): Promise<MissiveService> {
  const port = await freePort()
  const nodeArgs = opts.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${resolve(opts.profileDir)}`] : []
  // For experiments with V8 flags on the service (GC tracing, heap sizes); the bench sets none.
  if (process.env.PERF_SERVICE_NODE_ARGS) nodeArgs.push(...process.env.PERF_SERVICE_NODE_ARGS.split(' ').filter(Boolean))
  let spawned: SpawnedMissive
  try {
    spawned = spawnMissive({
      port,
      nodeArgs,
      env: {
        MISSIVE_DATA_DIR: opts.dataDir,
        MISSIVE_DEFAULT_POOL: opts.pool,
        ...(opts.durability ? { MISSIVE_DURABILITY: opts.durability } : {}),
        ...(opts.workers !== undefined ? { MISSIVE_WORKERS: String(opts.workers) } : {}),
        ...opts.env,
      },
    })
  } catch (err) {
    throw new StartError((err as Error).message)
  }
  const { child, output, url } = spawned
  track(child, true)
  const svc: MissiveService = {
    pid: child.pid!,
    port,
    url,
    output,
    roles: () => missiveRoles(child.pid!),
    async stop(timeoutMs = 20_000) {
      await stopChild(child, timeoutMs, true)
    },
  }
  const up = await awaitHttp(spawned, opts.timeoutMs ?? 30_000)
  if (up === 'exited') throw new StartError(lastLines(output()) || `exited with code ${child.exitCode}`)
  if (up === 'timeout') {
    await svc.stop(2000)
    throw new StartError(`did not answer on ${url} within ${opts.timeoutMs ?? 30_000} ms: ${lastLines(output())}`)
  }
  return svc
}

/** A `missive serve` just spawned by `spawnMissive`. */
export interface SpawnedMissive {
  child: ChildProcess
  port: number
  url: string
  /** The last characters the supervisor and its children printed. */
  output(): string
}

/**
 * Spawns `node [nodeArgs] dist/bin/missive.js serve` (the build) listening on 127.0.0.1:`port`,
 * in its own process group (so the whole tree can be signalled), logging at `warn`; `env`
 * overrides (and adds `MISSIVE_*` settings). Stopping it is the caller's business.
 */
export function spawnMissive(opts: { port: number; env?: Record<string, string | undefined>; nodeArgs?: string[]; captureMax?: number }): SpawnedMissive {
  const entry = join(ROOT, 'dist/bin/missive.js')
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run "npm run build" first`)
  const env = cleanEnv({
    MISSIVE_BIND: '127.0.0.1',
    MISSIVE_PORT: String(opts.port),
    MISSIVE_LOG_LEVEL: 'warn',
    ...opts.env,
  })
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), entry, 'serve'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  return { child, port: opts.port, url: `http://127.0.0.1:${opts.port}`, output: capture(child, opts.captureMax) }
}

/**
 * Polls `GET /` (any status will do) until it answers: 'up', or 'exited' when the process died
 * first, or 'timeout' after `timeoutMs`.
 */
export async function awaitHttp(s: { child: ChildProcess; url: string }, timeoutMs: number): Promise<'up' | 'exited' | 'timeout'> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (s.child.exitCode !== null || s.child.signalCode !== null) return 'exited'
    try {
      await fetch(`${s.url}/`, { signal: AbortSignal.timeout(1000) })
      return 'up'
    } catch {
      if (Date.now() > deadline) return 'timeout'
      await sleep(50)
    }
  }
}

/** The supervisor's children by role, from their command lines (/proc). */
export function missiveRoles(supervisorPid: number): { proxy: number[]; workers: number[] } {
  const proxy: number[] = []
  const workers: number[] = []
  for (const k of childProcesses(supervisorPid)) {
    if (/worker[/\\]main\.[jt]s/.test(k.cmdline)) workers.push(k.pid)
    else if (/proxy[/\\]main\.[jt]s/.test(k.cmdline)) proxy.push(k.pid)
  }
  return { proxy, workers }
}

function lastLines(text: string, n = 3): string {
  return text.trim().split('\n').slice(-n).join(' | ').slice(0, 600)
}

/** Direct children of `pid` with their command lines (from /proc; none once it is gone). */
export function childProcesses(pid: number): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = []
  let tasks: string[] = []
  try {
    tasks = readdirSync(`/proc/${pid}/task`)
  } catch {
    return out
  }
  for (const t of tasks) {
    let text = ''
    try {
      text = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8')
    } catch {
      continue // gone
    }
    for (const p of text.split(/\s+/).filter(Boolean)) {
      try {
        out.push({ pid: Number(p), cmdline: readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ').trim() })
      } catch {
        // gone
      }
    }
  }
  return out
}

/** SIGTERM to `child`, SIGKILL (to its group with `group`) after `timeoutMs`; resolves once it exited. */
export async function stopChild(child: ChildProcess, timeoutMs: number, group: boolean): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const pid = child.pid!
  try {
    process.kill(pid, 'SIGTERM')
  } catch {
    return
  }
  const done = exited(child)
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref())
  if ((await Promise.race([done, timer])) === 'timeout') {
    try {
      process.kill(group ? -pid : pid, 'SIGKILL')
    } catch {
      // gone
    }
    await done
  }
  if (group) {
    // The supervisor stops its children before exiting; make sure none outlived it.
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {
      // the group is empty: good
    }
  }
}

export function hasBinary(cmd: string, args = ['--version']): boolean {
  try {
    return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0
  } catch {
    return false
  }
}

export interface RedisService extends Service {
  version: string
  /** The Unix socket it also listens on (`startRedis`'s `unixSocket`), as a pool URI: `redis:/path`. */
  socketUrl?: string
}

/**
 * Starts redis-server on a free port with its files in `dir`. With `appendfsync` 'always' or
 * 'everysec' it runs the configuration we ship (`deploy/redis/redis-durable.conf` or
 * `redis-fast.conf`: AOF settings, rewrite thresholds, no RDB snapshots), so the bench measures
 * what operators run; only port, bind address, directory and logging are overridden. Without
 * `appendfsync`, persistence is off (ceilings, the "no persistence" comparison). `appendfsync: 'no'`
 * is AOF without fsync on the fast config. `extra`: more command-line directives, applied last
 * (perf/ab.ts compares configurations with them).
 */
export async function startRedis(opts: { dir: string; appendfsync?: 'always' | 'everysec' | 'no'; unixSocket?: boolean; extra?: string[] }): Promise<RedisService> {
  const port = await freePort()
  const socket = join(opts.dir, 'redis.sock')
  const extra = [...(opts.unixSocket ? ['--unixsocket', socket, '--unixsocketperm', '700'] : []), ...(opts.extra ?? [])]
  const { child, output } = spawnRedis(redisServerArgs({ port, dir: opts.dir, appendfsync: opts.appendfsync, shippedConfig: true, extra }))
  track(child, false)
  const version = /v=(\S+)/.exec(spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout ?? '')?.[1] ?? 'unknown'
  const svc: RedisService = {
    pid: child.pid!,
    port,
    url: `redis://127.0.0.1:${port}`,
    ...(opts.unixSocket ? { socketUrl: `redis:${socket}` } : {}),
    version,
    output,
    stop: (timeoutMs = 10_000) => stopChild(child, timeoutMs, false),
  }
  const up = await awaitRedis(child, port, 10_000)
  if (up === 'exited') throw new StartError(`redis-server exited: ${lastLines(output())}`)
  if (up === 'timeout') {
    await svc.stop(1000)
    throw new StartError(`redis-server did not answer on ${port}`)
  }
  return svc
}

/**
 * `redis-server` arguments: loopback on `port`, files in `dir`, in the foreground, logging to
 * stdout, no RDB snapshots; AOF with `appendfsync` when given, else no persistence. With
 * `shippedConfig` (and `appendfsync`) the configuration we ship for that durability mode comes
 * first (`deploy/redis/redis-durable.conf` for 'always', else `redis-fast.conf`: AOF settings and
 * rewrite thresholds), copied into `dir` without the directives overridden here: redis-server
 * applies `dir` while reading the file, before command-line overrides.
 */
export function redisServerArgs(opts: {
  port: number
  dir: string
  appendfsync?: 'always' | 'everysec' | 'no'
  shippedConfig?: boolean
  extra?: string[]
}): string[] {
  const conf: string[] = []
  if (opts.shippedConfig && opts.appendfsync !== undefined) {
    const shipped = join(ROOT, 'deploy/redis', opts.appendfsync === 'always' ? 'redis-durable.conf' : 'redis-fast.conf')
    const overridden = /^\s*(port|bind|dir|daemonize|protected-mode|logfile|pidfile|supervised)\b/
    const copy = join(opts.dir, 'redis.conf')
    writeFileSync(copy, readFileSync(shipped, 'utf8').split('\n').filter((l) => !overridden.test(l)).join('\n'))
    conf.push(copy)
  }
  return [
    ...conf,
    '--port', String(opts.port),
    '--bind', '127.0.0.1',
    '--dir', opts.dir,
    '--save', '',
    '--daemonize', 'no',
    '--protected-mode', 'yes',
    '--logfile', '',
    ...(opts.appendfsync === undefined ? ['--appendonly', 'no'] : ['--appendonly', 'yes', '--appendfsync', opts.appendfsync]),
    ...(opts.extra ?? []),
  ]
}

/** Spawns `redis-server args`; stopping it is the caller's business. */
export function spawnRedis(args: string[], captureMax?: number): { child: ChildProcess; output: () => string } {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  return { child, output: capture(child, captureMax) }
}

/** Polls PING until the server answers +PONG: 'up', 'exited' (it died first) or 'timeout'. */
export async function awaitRedis(child: ChildProcess, port: number, timeoutMs: number): Promise<'up' | 'exited' | 'timeout'> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) return 'exited'
    if ((await redisPing(port).catch(() => '')) === '+PONG') return 'up'
    if (Date.now() > deadline) return 'timeout'
    await sleep(50)
  }
}

/**
 * Sends one command to the Redis on `port` and resolves with the raw RESP reply once it stops
 * arriving. `timeoutMs` bounds the wait (a FLUSHALL of a large data set takes seconds).
 */
export function redisCommand(port: number, args: string[], timeoutMs = 2000): Promise<string> {
  return new Promise((resolveReply, reject) => {
    const s = net.connect(port, '127.0.0.1')
    s.setTimeout(timeoutMs, () => s.destroy(new Error(`timeout: ${args[0]} took over ${timeoutMs} ms`)))
    s.once('error', reject)
    s.once('connect', () => s.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`))
    let buf = ''
    let timer: NodeJS.Timeout | undefined
    // Replies here are small: a one-line reply (+PONG, :1, -ERR) is complete at its CRLF, a bulk
    // string (INFO) once all its announced bytes are in; anything else (arrays) when no more
    // bytes come for 20 ms.
    const done = (): void => {
      s.destroy()
      resolveReply(buf)
    }
    s.on('data', (d) => {
      buf += d.toString('utf8')
      clearTimeout(timer)
      const m = /^\$(\d+)\r\n/.exec(buf)
      if (/^[+:-]/.test(buf) && buf.endsWith('\r\n')) done()
      else if (m && Buffer.byteLength(buf) >= m[0].length + Number(m[1])) done()
      else timer = setTimeout(done, 20)
    })
  })
}

/** `INFO` of the Redis on `port` as a field → value map (perf/ does not use the driver it measures). */
export async function redisInfo(port: number): Promise<Map<string, string>> {
  const info = new Map<string, string>()
  for (const line of (await redisCommand(port, ['INFO'])).split('\r\n')) {
    const i = line.indexOf(':')
    if (i > 0 && !line.startsWith('#') && !line.startsWith('$')) info.set(line.slice(0, i), line.slice(i + 1))
  }
  return info
}

/** Resolves once no AOF rewrite runs or waits on this Redis (at most `maxMs`); the ms it waited. */
export async function aofQuiet(port: number, maxMs = 20_000): Promise<number> {
  const t0 = performance.now()
  while (performance.now() - t0 < maxMs) {
    const i = await redisInfo(port).catch(() => null)
    if (i === null || (i.get('aof_rewrite_in_progress') !== '1' && i.get('aof_rewrite_scheduled') !== '1')) break
    await new Promise((r) => setTimeout(r, 100))
  }
  return performance.now() - t0
}

/** One event of Redis's latency monitor since the last reset (`LATENCY LATEST`, `LATENCY HISTORY`). */
export interface LatencyEvent {
  /** The worst latency, ms. */
  worst: number
  /**
   * The seconds in which the event went over the threshold: the monitor keeps one sample a second
   * (the worst of that second), so this says whether a worst case was one stall or many.
   */
  seconds: number
}

/** Redis's latency monitor on `port`: event → its worst latency and how many seconds it went over the threshold, since the last reset. */
export async function redisLatency(port: number, reset: boolean): Promise<Map<string, LatencyEvent>> {
  const raw = await redisCommand(port, ['LATENCY', 'LATEST'])
  const out = new Map<string, LatencyEvent>()
  for (const m of raw.matchAll(/\*4\r\n\$\d+\r\n([^\r]+)\r\n:\d+\r\n:\d+\r\n:(\d+)\r\n/g)) {
    // LATENCY HISTORY: an array of [time, latency] pairs, one per second with an event.
    const history = await redisCommand(port, ['LATENCY', 'HISTORY', m[1]!])
    out.set(m[1]!, { worst: Number(m[2]), seconds: Number(/^\*(\d+)/.exec(history)?.[1] ?? 0) })
  }
  if (reset) await redisCommand(port, ['LATENCY', 'RESET'])
  return out
}

/** `event 12 ms` for one event, and `in N s` when it went over the threshold in more than one second. */
export function latencyText(name: string, e: LatencyEvent): string {
  return `${name} ${e.worst} ms${e.seconds > 1 ? ` in ${e.seconds} s` : ''}`
}

/** PING over a raw connection: the reply line (`+PONG`). */
export async function redisPing(port: number): Promise<string> {
  return (await redisCommand(port, ['PING'])).trim()
}

/**
 * Starts the uWS hello-world (dist/perf/uws-hello.js) on a free port; with `durable`, the durable
 * floor: each request one SET of `bytes` bytes on the Redis at `redisPort`, answered once acknowledged.
 */
export async function startHello(durable?: { redisPort: number; bytes: number }): Promise<Service> {
  const entry = join(ROOT, 'dist/perf/uws-hello.js')
  const port = await freePort()
  const args = [entry, String(port), ...(durable ? [String(durable.redisPort), String(durable.bytes)] : [])]
  const child = spawn(process.execPath, args, { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
  track(child, false)
  const output = capture(child)
  const svc: Service = {
    pid: child.pid!,
    port,
    url: `http://127.0.0.1:${port}`,
    output,
    stop: (timeoutMs = 5000) => stopChild(child, timeoutMs, false),
  }
  const deadline = Date.now() + 10_000
  while (!output().includes('listening')) {
    if (child.exitCode !== null) throw new StartError(`uws-hello exited: ${lastLines(output())}`)
    if (Date.now() > deadline) {
      await svc.stop(1000)
      throw new StartError('uws-hello did not start')
    }
    await sleep(20)
  }
  return svc
}

/** Runs a command to completion (tracked, so it dies with us), returning its stdout. */
export function runTool(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    const child = spawn(cmd, args, { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    track(child, false)
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString('utf8')))
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.once('error', (err) => {
      clearTimeout(timer)
      resolveRun({ code: null, stdout, stderr: stderr + String(err) })
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolveRun({ code, stdout, stderr })
    })
  })
}
