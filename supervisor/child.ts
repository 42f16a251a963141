/**
 * One supervised child process (a worker or a proxy): forked from an entry file, considered up
 * when it sends `{type: 'ready'}` over IPC, restarted with exponential back-off when it dies, and
 * stopped with SIGTERM then, past a deadline, SIGKILL.
 *
 * With `heartbeatMs`, a ready child is sent `{type: 'heartbeat', n}` over IPC that often and must
 * echo it: one silent for `hungAfterMs` (stopped by SIGSTOP, or stuck in a loop) is SIGKILLed by
 * pid and restarted like a child that died. Workers answer heartbeats (worker/main.ts).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { EventEmitter } from 'node:events'
import type { Logger } from '../shared/log.js'

/** The IPC message a child sends once it serves. A proxy adds the port it listens on. */
export interface ReadyMessage {
  type: 'ready'
  port?: number
}

export interface ChildOptions {
  /** For logs: `worker-0`, `proxy`. */
  role: string
  /** The script to fork. */
  entry: string
  env: NodeJS.ProcessEnv
  /** Node flags for the child (the supervisor passes its own, so tsx keeps working). */
  execArgv?: string[]
  /** First restart delay, doubled per crash up to `backoffMaxMs`. Default 100 ms. */
  backoffMinMs?: number
  /** Default 5000 ms. */
  backoffMaxMs?: number
  /** A child that ran this long before dying restarts after `backoffMinMs` again. Default 30 s. */
  healthyAfterMs?: number
  /** How long a (re)started child may take to send `ready`. Default 60 s. */
  readyTimeoutMs?: number
  /** How often a ready child is sent a heartbeat (config `workerHeartbeatMs`). 0 or absent: never. */
  heartbeatMs?: number
  /** A child that echoes no heartbeat for this long is killed and restarted (`workerHungAfterMs`). */
  hungAfterMs?: number
}

interface Heartbeat {
  type: 'heartbeat'
  n: number
}

const isHeartbeat = (m: unknown): m is Heartbeat =>
  m !== null && typeof m === 'object' && (m as { type?: unknown }).type === 'heartbeat'

const isReady = (m: unknown): m is ReadyMessage =>
  m !== null && typeof m === 'object' && (m as { type?: unknown }).type === 'ready'

/**
 * Events: `ready` (ReadyMessage) each time a (re)started child is up; `exit` ({code, signal})
 * each time it dies.
 */
export class ManagedChild extends EventEmitter {
  readonly role: string
  readonly #opts: ChildOptions
  readonly #log: Logger
  #child: ChildProcess | null = null
  #startedAt = 0
  #delay: number
  #restartTimer: NodeJS.Timeout | null = null
  #readyTimer: NodeJS.Timeout | null = null
  #stopping = false
  #everReady = false
  #restarts = 0
  #hungKills = 0
  /** The running child has said it is ready (and has not exited since). */
  #ready = false
  #exited: Promise<void> = Promise.resolve()
  #heart: NodeJS.Timeout | null = null

  constructor(opts: ChildOptions, log: Logger) {
    super()
    this.role = opts.role
    this.#opts = opts
    this.#log = log
    this.#delay = opts.backoffMinMs ?? 100
  }

  /** The running child's pid, if one is running. */
  get pid(): number | undefined {
    return this.#child?.pid
  }

  /** Sends a message over the child's IPC channel; dropped when the child is not running. */
  send(msg: unknown): void {
    try {
      if (this.#child?.connected) this.#child.send(msg as object)
    } catch {
      // The child is going away; it will be told again when it is back.
    }
  }

  /** True while a child runs that has said it is ready: what `missive_supervisor_child_up` shows. */
  get up(): boolean {
    return this.#child !== null && this.#ready
  }

  /** Times the child was restarted after a crash. */
  get restarts(): number {
    return this.#restarts
  }

  /** Times the child was killed for not answering heartbeats. */
  get hungKills(): number {
    return this.#hungKills
  }

  /** Heartbeats the ready `child`; SIGKILLs it when it stays silent past `hungAfterMs`. */
  #watch(child: ChildProcess): void {
    const every = this.#opts.heartbeatMs ?? 0
    if (every <= 0 || this.#heart !== null) return
    const hungAfter = Math.max(this.#opts.hungAfterMs ?? 0, 2 * every)
    let heard = Date.now()
    let n = 0
    child.on('message', (msg: unknown) => {
      if (isHeartbeat(msg)) heard = Date.now()
    })
    this.#heart = setInterval(() => {
      if (this.#stopping || this.#child !== child) return
      const silent = Date.now() - heard
      if (silent > hungAfter) {
        this.#hungKills++
        this.#log.error({ child: this.role, childPid: child.pid, silentMs: silent }, 'child does not answer heartbeats (hung); SIGKILL and restart')
        this.#unwatch()
        // By pid: a stopped process cannot act on SIGTERM, SIGKILL ends it even so.
        try {
          if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
        } catch {
          // Already gone: its exit restarts it.
        }
        return
      }
      try {
        if (child.connected) child.send({ type: 'heartbeat', n: ++n })
      } catch {
        // The child is going away: its exit restarts it.
      }
    }, every)
    this.#heart.unref()
  }

  #unwatch(): void {
    if (this.#heart !== null) clearInterval(this.#heart)
    this.#heart = null
  }

  /**
   * Forks the child and resolves with its ready message. Rejects if it exits or stays silent past
   * `readyTimeoutMs` first (it is then killed and not restarted).
   */
  start(spare?: ChildProcess): Promise<ReadyMessage> {
    return new Promise<ReadyMessage>((resolve, reject) => {
      const onReady = (msg: ReadyMessage): void => {
        this.off('start-failed', onFailed)
        resolve(msg)
      }
      const onFailed = (err: Error): void => {
        this.off('ready', onReady)
        reject(err)
      }
      this.once('ready', onReady)
      this.once('start-failed', onFailed)
      this.#spawn(spare)
    })
  }

  /**
   * Forks the child — or, given a waiting spare (supervisor/spare.ts), hands it this child's
   * `MISSIVE_*` environment so it becomes the child without a fresh start. Restarts always fork.
   */
  #spawn(spare?: ChildProcess): void {
    this.#restartTimer = null
    if (this.#stopping) {
      spare?.kill()
      return
    }
    const child =
      spare ??
      fork(this.#opts.entry, [], {
        env: this.#opts.env,
        execArgv: this.#opts.execArgv ?? process.execArgv,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      })
    if (spare !== undefined) {
      const env: Record<string, string> = {}
      for (const [k, v] of Object.entries(this.#opts.env)) if (k.startsWith('MISSIVE_') && v !== undefined) env[k] = v
      spare.send({ type: 'assign', env })
    }
    this.#child = child
    this.#startedAt = Date.now()
    let resolveExited!: () => void
    this.#exited = new Promise<void>((resolve) => {
      resolveExited = resolve
    })
    this.#log.info({ child: this.role, childPid: child.pid, entry: this.#opts.entry, ...(spare && { spare: true }) }, 'child started')

    this.#readyTimer = setTimeout(() => {
      this.#log.error({ child: this.role, childPid: child.pid }, 'child did not become ready in time; killing it')
      child.kill('SIGKILL')
    }, this.#opts.readyTimeoutMs ?? 60_000)

    child.on('message', (msg: unknown) => {
      // Anything else the child says (the proxy's metrics requests) is for the supervisor.
      if (!isReady(msg)) {
        if (!isHeartbeat(msg)) this.emit('message', msg)
        return
      }
      if (this.#readyTimer) clearTimeout(this.#readyTimer)
      this.#readyTimer = null
      this.#everReady = true
      this.#ready = true
      this.#log.info({ child: this.role, childPid: child.pid, ...(msg.port === undefined ? {} : { port: msg.port }) }, 'child ready')
      this.#watch(child)
      this.emit('ready', msg)
    })
    child.on('error', (err) => this.#log.error({ child: this.role, err }, 'child process error'))
    child.once('exit', (code, signal) => {
      this.#unwatch()
      if (this.#readyTimer) clearTimeout(this.#readyTimer)
      this.#readyTimer = null
      this.#child = null
      this.#ready = false
      const ranMs = Date.now() - this.#startedAt
      this.#log[this.#stopping ? 'info' : 'warn']({ child: this.role, childPid: child.pid, code, signal, ranMs }, 'child exited')
      resolveExited()
      this.emit('exit', { code, signal })
      if (!this.#everReady) {
        const why = this.#stopping ? 'was stopped' : `exited (code ${code}, signal ${signal})`
        this.#stopping = true
        this.emit('start-failed', Object.assign(new Error(`${this.role} ${why} before it was ready`), { exitCode: code }))
        return
      }
      if (this.#stopping) return
      const healthy = this.#opts.healthyAfterMs ?? 30_000
      if (ranMs >= healthy) this.#delay = this.#opts.backoffMinMs ?? 100
      const delay = this.#delay
      this.#delay = Math.min(this.#delay * 2, this.#opts.backoffMaxMs ?? 5000)
      this.#restarts++
      this.#log.warn({ child: this.role, delayMs: delay, restarts: this.#restarts }, 'restarting child')
      this.#restartTimer = setTimeout(() => this.#spawn(), delay)
    })
  }

  /**
   * Stops the child for good: no more restarts; SIGTERM (or `signal`), then SIGKILL if it is still
   * running after `killAfterMs`. Resolves once it has exited.
   */
  async stop(killAfterMs: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    this.#stopping = true
    this.#unwatch()
    if (this.#restartTimer) clearTimeout(this.#restartTimer)
    this.#restartTimer = null
    const child = this.#child
    if (child === null) return
    child.kill(signal)
    const timer = setTimeout(() => {
      if (this.#child === child) {
        this.#log.warn({ child: this.role, childPid: child.pid, afterMs: killAfterMs }, 'child did not stop in time; SIGKILL')
        child.kill('SIGKILL')
      }
    }, killAfterMs)
    await this.#exited
    clearTimeout(timer)
  }

  /** SIGKILLs the child at once, with no restart. */
  kill(): void {
    this.#stopping = true
    this.#unwatch()
    if (this.#restartTimer) clearTimeout(this.#restartTimer)
    this.#restartTimer = null
    this.#child?.kill('SIGKILL')
  }
}
