/**
 * Helpers shared by the test suites: temp dirs, free ports, and real processes (a whole Missive,
 * a Redis server) started on loopback and stopped by pid in teardown. Spawning and waiting for a
 * process to answer is the bench's code (perf/lib/procs.ts): both start the same processes the
 * same way; here each is stopped by the test's teardown.
 */
import { spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  awaitHttp,
  awaitRedis,
  childProcesses as procChildren,
  exited,
  freePort,
  missiveRoles,
  redisServerArgs,
  spawnMissive,
  spawnRedis,
} from '../../perf/lib/procs.js'

export { exited, freePort }

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

/** Direct children of `pid`, with their command lines (from /proc). */
export async function childProcesses(pid: number): Promise<{ pid: number; cmdline: string }[]> {
  return procChildren(pid)
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
  const dir = await tempDir(t)
  const dataDir = opts.dataDir ?? join(dir, 'data')
  const port = await freePort()
  const env: Record<string, string> = { MISSIVE_DATA_DIR: dataDir, ...opts.env }
  if (opts.config !== undefined) {
    const file = join(dir, 'config.json')
    await writeFile(file, JSON.stringify(opts.config))
    env.MISSIVE_CONFIG = file
  }
  const spawned = spawnMissive({ port, env, captureMax: 64 * 1024 })
  const { child, output } = spawned
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

  const baseUrl = spawned.url
  const up = await awaitHttp(spawned, opts.timeoutMs ?? 30_000)
  if (up === 'exited') throw new Error(`missive exited during start-up (code ${child.exitCode}, signal ${child.signalCode}):\n${output()}`)
  if (up === 'timeout') throw new Error(`missive did not answer on ${baseUrl} in time:\n${output()}`)

  return {
    port,
    baseUrl,
    pid,
    dataDir,
    child,
    output,
    async children() {
      const { proxy, workers } = missiveRoles(pid)
      return { proxy: proxy[0], workers }
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
  // A port found free can be taken by another test file's process before redis-server binds it:
  // then a new one is tried, unless the caller chose the port.
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await freePort())
    const { child, output } = spawnRedis(redisServerArgs({ port, dir, appendfsync: opts.appendfsync, extra: opts.args }), 64 * 1024)
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

    const up = await awaitRedis(child, port, 10_000)
    if (up === 'exited' && opts.port === undefined && attempt < 5 && /Address already in use/.test(output())) continue
    if (up !== 'up') throw new Error(`redis-server on port ${port} ${up === 'exited' ? `exited (code ${child.exitCode})` : 'did not answer in time'}:\n${output()}`)
    return redisProcess(port, pid, dir, child, output, exit)
  }
}

/** The handle startRedis gives for a redis-server up on `port`. */
function redisProcess(port: number, pid: number, dir: string, child: ChildProcess, output: () => string, exit: Promise<unknown>): RedisProcess {
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
