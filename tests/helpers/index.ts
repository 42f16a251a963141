/**
 * Helpers shared by the test suites: temp dirs, free ports, and real processes (a whole Missive,
 * a Redis server) started on loopback and stopped by pid in teardown.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The bit of a tap `Test` the helpers need. */
export interface Teardown {
  teardown(fn: () => unknown): void
}

/** The repository root. */
export const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..')

/** A fresh temp directory (short path: Unix sockets live in it), removed in teardown. */
export async function tempDir(t: Teardown, prefix = 'missive-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** A TCP port free on 127.0.0.1 right now. */
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

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** `p`'s value, or `null` if it takes longer than `ms` (the timer never outlives the race). */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<null>((r) => {
    timer = setTimeout(() => r(null), ms)
  })
  try {
    return await Promise.race([p, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Polls `fn` until it returns a truthy value; throws after `timeoutMs`. */
export async function waitFor<T>(fn: () => T | Promise<T>, opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000)
  let last: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${opts.what ?? 'a condition'}${last ? `: ${(last as Error).message}` : ''}`)
    }
    await sleep(opts.intervalMs ?? 50)
  }
}

/** True while a process with this pid exists (and is not a zombie we could reap). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Resolves when `child` has exited, with its code and signal. */
export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode })
  }
  return new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })))
}

/** Keeps the last `max` characters a child printed, for failure messages. */
function capture(child: ChildProcess, max = 64 * 1024): () => string {
  let out = ''
  const add = (chunk: Buffer): void => {
    out += chunk.toString('utf8')
    if (out.length > max) out = out.slice(out.length - max)
  }
  child.stdout?.on('data', add)
  child.stderr?.on('data', add)
  return () => out
}

/** Direct children of `pid`, with their command lines (from /proc). */
export async function childProcesses(pid: number): Promise<{ pid: number; cmdline: string }[]> {
  const out: { pid: number; cmdline: string }[] = []
  let tasks: string[]
  try {
    tasks = await readdir(`/proc/${pid}/task`)
  } catch {
    return out
  }
  for (const task of tasks) {
    let text = ''
    try {
      text = await readFile(`/proc/${pid}/task/${task}/children`, 'utf8')
    } catch {
      continue
    }
    for (const p of text.split(/\s+/).filter(Boolean)) {
      const child = Number(p)
      let cmdline = ''
      try {
        cmdline = (await readFile(`/proc/${child}/cmdline`, 'utf8')).split('\0').join(' ').trim()
      } catch {
        continue
      }
      out.push({ pid: child, cmdline })
    }
  }
  return out
}

export interface MissiveProcess {
  port: number
  baseUrl: string
  /** The supervisor's pid (`node dist/bin/missive.js serve`). */
  pid: number
  dataDir: string
  child: ChildProcess
  /** Everything the processes printed so far (last 64 KiB). */
  output(): string
  /** The supervisor's children by role: worker pids (by index) and the proxy pid. */
  children(): Promise<{ proxy: number | undefined; workers: number[] }>
  /** Sends `signal` (default SIGTERM) to the supervisor and resolves with its exit. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** SIGKILLs the supervisor and every child (its process group), without any drain. */
  kill9Tree(): Promise<void>
}

export interface StartMissiveOptions {
  /** Extra environment for the supervisor (overrides the defaults below). */
  env?: Record<string, string>
  /** Written to a JSON file passed as MISSIVE_CONFIG. */
  config?: Record<string, unknown>
  /** Reuse a data directory (e.g. to restart on the same data); default: a new temp dir. */
  dataDir?: string
  /** How long to wait for `GET /` to answer. Default 30 s. */
  timeoutMs?: number
}

/**
 * Starts `node dist/bin/missive.js serve` (the compiled build) on a free loopback port with its
 * data in a temp dir, and waits until `GET /` answers (any status). The process is its own process
 * group so `kill9Tree` can SIGKILL it with every child; teardown stops whatever is left, by pid.
 */
export async function startMissive(t: Teardown, opts: StartMissiveOptions = {}): Promise<MissiveProcess> {
  const entry = join(ROOT, 'dist/bin/missive.js')
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run "npm run build" (npm test does) first`)
  const dir = await tempDir(t)
  const dataDir = opts.dataDir ?? join(dir, 'data')
  const port = await freePort()
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    MISSIVE_BIND: '127.0.0.1',
    MISSIVE_PORT: String(port),
    MISSIVE_DATA_DIR: dataDir,
    MISSIVE_LOG_LEVEL: 'warn',
    ...opts.env,
  }
  // Tap's loader flags must not leak into the service.
  delete env.NODE_OPTIONS
  if (opts.config !== undefined) {
    const file = join(dir, 'config.json')
    await writeFile(file, JSON.stringify(opts.config))
    env.MISSIVE_CONFIG = file
  }
  const child = spawn(process.execPath, [entry, 'serve'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  const output = capture(child)
  const pid = child.pid!
  const exit = exited(child)
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    try {
      process.kill(pid, 'SIGTERM')
    } catch {
      return
    }
    const done = await within(exit, 15_000)
    if (done === null) {
      try {
        process.kill(-pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
  })

  const baseUrl = `http://127.0.0.1:${port}`
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000)
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`missive exited during start-up (code ${child.exitCode}, signal ${child.signalCode}):\n${output()}`)
    }
    try {
      await fetch(`${baseUrl}/`, { signal: AbortSignal.timeout(1000) })
      break
    } catch {
      if (Date.now() > deadline) throw new Error(`missive did not answer on ${baseUrl} in time:\n${output()}`)
      await sleep(50)
    }
  }

  return {
    port,
    baseUrl,
    pid,
    dataDir,
    child,
    output,
    async children() {
      const kids = await childProcesses(pid)
      const workers: number[] = []
      let proxy: number | undefined
      for (const k of kids) {
        const m = /worker[/\\]main\.[jt]s/.test(k.cmdline)
        if (m) workers.push(k.pid)
        else if (/proxy[/\\]main\.[jt]s/.test(k.cmdline)) proxy = k.pid
      }
      return { proxy, workers }
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 20_000) {
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, signal)
      const r = await within(exit, timeoutMs)
      if (r === null) throw new Error(`missive did not exit within ${timeoutMs} ms of ${signal}:\n${output()}`)
      return r
    },
    async kill9Tree() {
      try {
        process.kill(-pid, 'SIGKILL')
      } catch {
        // already gone
      }
      await exit
    },
  }
}

export interface RedisProcess {
  port: number
  url: string
  pid: number
  dir: string
  child: ChildProcess
  output(): string
  /** SIGTERM (Redis saves/fsyncs as configured) and wait for exit. */
  stop(): Promise<void>
  /** SIGKILL: an abrupt crash, nothing flushed beyond what the fsync policy already did. */
  kill9(): Promise<void>
}

/** True if `redis-server` can be run. */
export function hasRedis(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0
}

/**
 * Starts a real `redis-server` on a free loopback port with its files in a temp dir (or `dir`).
 * `appendfsync` turns AOF on with that policy; without it persistence is off. Throws a clear error
 * when `redis-server` is not installed.
 */
export async function startRedis(
  t: Teardown,
  opts: { appendfsync?: 'always' | 'everysec' | 'no'; dir?: string; port?: number; args?: string[] } = {},
): Promise<RedisProcess> {
  if (!hasRedis()) {
    throw new Error('redis-server is not installed (apt-get install redis-server); Redis tests need a real server')
  }
  const dir = opts.dir ?? (await tempDir(t, 'missive-redis-'))
  const port = opts.port ?? (await freePort())
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--save', '',
    '--daemonize', 'no',
    '--protected-mode', 'yes',
    '--logfile', '',
    ...(opts.appendfsync === undefined
      ? ['--appendonly', 'no']
      : ['--appendonly', 'yes', '--appendfsync', opts.appendfsync]),
    ...(opts.args ?? []),
  ]
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const output = capture(child)
  const pid = child.pid!
  const exit = exited(child)
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      return
    }
    await exit
  })

  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`redis-server exited (code ${child.exitCode}):\n${output()}`)
      return (await redisPing(port)) === '+PONG'
    },
    { timeoutMs: 10_000, what: `redis-server on port ${port}` },
  )

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid,
    dir,
    child,
    output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGTERM')
      await exit
    },
    async kill9() {
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL')
      await exit
    },
  }
}

/** Sends PING over a raw connection; resolves with the first reply line. */
function redisPing(port: number): Promise<string> {
  return new Promise((resolveReply, reject) => {
    const s = net.connect(port, '127.0.0.1')
    s.setTimeout(1000, () => s.destroy(new Error('timeout')))
    s.once('error', reject)
    s.once('connect', () => s.write('PING\r\n'))
    s.once('data', (d) => {
      s.destroy()
      resolveReply(d.toString('utf8').trim())
    })
  })
}
