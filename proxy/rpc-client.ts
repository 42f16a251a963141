/**
 * The proxy's side of the RPC wire: a `DataDriver` whose every method runs in a worker process.
 *
 * One `RpcDriver` talks to one worker socket over one or more connections, each multiplexing any
 * number of calls by request id. A call never hangs: it is answered by the worker, or fails with
 * `unavailable` (→ 503 + Retry-After) when the connection drops, when no connection is up, or when
 * the worker does not answer within the timeout. Lost connections are re-established in the
 * background with capped exponential back-off; the driver emits `ready` whenever it goes from no
 * usable connection to one, and `down` the other way.
 *
 * A call that fails with `unavailable` because the connection dropped may or may not have run in
 * the worker: the client retries, as it would after any 503.
 *
 * A worker can also hang with its socket open (stopped by SIGSTOP, or an event loop that does not
 * turn): with `heartbeatMs` set, each connection sends a `heartbeat` call that often, and a worker
 * from which nothing at all has been heard for `hungAfterMs` is *hung*: its calls in flight fail
 * at once with `unavailable`, and so do new ones, until it answers again or its connection is
 * replaced (the supervisor kills and restarts a hung worker: supervisor/child.ts).
 */
import { EventEmitter } from 'node:events'
import net from 'node:net'
import { performance } from 'node:perf_hooks'
import type { Logger } from '../shared/log.js'
import { MissiveError } from '../shared/errors.js'
import { errorFromWire } from '../shared/storage/errors.js'
import { FrameDecoder, FrameError, FrameWriter, isErrorReply, isReply, type RpcReply } from '../shared/rpc/frames.js'
import type { DataDriver } from '../shared/storage/contract.js'
import { defineOperations, type DriverOperation, type OpArgs, type OpResult } from '../shared/storage/operations.js'

/** Operations a worker serves itself, outside the storage contract (worker/main.ts). */
export type WorkerOperation = 'metrics' | 'heartbeat' | 'storeInfo'

export const UNREACHABLE_DESCRIPTION =
  'Service temporarily unavailable: the worker is not reachable. Please try again in a few seconds.'
export const TIMEOUT_DESCRIPTION =
  'Service temporarily unavailable: the worker did not answer in time. Please try again in a few seconds.'

const unreachable = (): MissiveError => new MissiveError('unavailable', UNREACHABLE_DESCRIPTION, { retryAfter: 1 })
const timedOut = (): MissiveError => new MissiveError('unavailable', TIMEOUT_DESCRIPTION, { retryAfter: 1 })
export const HUNG_DESCRIPTION =
  'Service temporarily unavailable: the worker is not responding and is being restarted. Please try again in a few seconds.'
const hung = (): MissiveError => new MissiveError('unavailable', HUNG_DESCRIPTION, { retryAfter: 1 })

export interface RpcDriverOptions {
  /** How long a call may wait for its answer (config `rpcTimeoutMs`). */
  timeoutMs: number
  /** Connections to open to the worker (calls are spread round-robin). Default 1. */
  connections?: number
  /** First reconnect delay; doubles per failed attempt up to `reconnectMaxMs`. Default 25 ms. */
  reconnectMinMs?: number
  /** Default 1000 ms. */
  reconnectMaxMs?: number
  /** Largest frame sent or accepted (default 64 MiB). */
  maxFrameBytes?: number
  /** When the requests of one tick are written (see `FrameWriter`). Default `immediate`. */
  flush?: 'immediate' | 'microtask'
  /** How often each connection sends a heartbeat (config `workerHeartbeatMs`). 0 or absent: none. */
  heartbeatMs?: number
  /**
   * A worker silent this long while heartbeats are sent is hung (config `workerHungAfterMs`; at
   * least two heartbeats). 0 or absent: never.
   */
  hungAfterMs?: number
  log?: Logger
}

interface Pending {
  resolve(value: unknown): void
  reject(err: unknown): void
  /** performance.now() after which the call fails. */
  deadline: number
}

/** One connection with its own pending calls. */
class Channel {
  socket: net.Socket | null = null
  writer: FrameWriter | null = null
  connected = false
  readonly pending = new Map<number, Pending>()
  retryDelay: number
  retryTimer: NodeJS.Timeout | null = null
  /** A heartbeat is waiting for its answer on this connection. */
  beating = false

  constructor(readonly index: number, minDelay: number) {
    this.retryDelay = minDelay
  }

  /** Fails every pending call with `err`. */
  failAll(err: () => MissiveError): void {
    if (this.pending.size === 0) return
    const calls = [...this.pending.values()]
    this.pending.clear()
    for (const p of calls) p.reject(err())
  }
}

/**
 * The operations of the contract are generated below from the operation table, each one `call`;
 * declared here (declaration merging) so that the class type has them as methods.
 */
export interface RpcDriver extends DataDriver {}

/** A `DataDriver` served by a worker process over its Unix socket. */
export class RpcDriver extends EventEmitter implements DataDriver {
  readonly kind = 'rpc'
  readonly socketPath: string
  readonly #opts: Required<Omit<RpcDriverOptions, 'log'>>
  readonly #log: Logger | undefined
  readonly #channels: Channel[]
  readonly #sweeper: NodeJS.Timeout
  readonly #heart: NodeJS.Timeout | undefined
  /** performance.now() when the worker last answered anything (or a connection came up). */
  #heard = performance.now()
  #hung = false
  #beats = 0
  #nextId = 0
  #rr = 0
  #up = 0
  #closed = false

  constructor(socketPath: string, opts: RpcDriverOptions) {
    super()
    this.socketPath = socketPath
    this.#opts = {
      timeoutMs: opts.timeoutMs,
      connections: Math.max(1, opts.connections ?? 1),
      reconnectMinMs: opts.reconnectMinMs ?? 25,
      reconnectMaxMs: opts.reconnectMaxMs ?? 1000,
      maxFrameBytes: opts.maxFrameBytes ?? 64 * 1024 * 1024,
      flush: opts.flush ?? 'immediate',
      heartbeatMs: opts.heartbeatMs ?? 0,
      hungAfterMs: opts.heartbeatMs ? Math.max(opts.hungAfterMs ?? 0, 2 * opts.heartbeatMs) : 0,
    }
    this.#log = opts.log
    this.#channels = Array.from({ length: this.#opts.connections }, (_, i) => new Channel(i, this.#opts.reconnectMinMs))
    // One coarse timer for every call instead of one timer per call. All calls share one timeout,
    // so each pending map (insertion-ordered) is also ordered by deadline.
    const period = Math.min(1000, Math.max(5, Math.floor(this.#opts.timeoutMs / 10)))
    this.#sweeper = setInterval(() => this.#sweep(), period)
    this.#sweeper.unref()
    if (this.#opts.heartbeatMs > 0) {
      this.#heart = setInterval(() => this.#beat(), this.#opts.heartbeatMs)
      this.#heart.unref()
    }
    for (const ch of this.#channels) this.#connect(ch)
  }

  /** True while at least one connection to the worker is up. */
  get connected(): boolean {
    return this.#up > 0
  }

  /** Calls waiting for an answer (heartbeats not counted). */
  get pendingCalls(): number {
    let n = 0
    for (const ch of this.#channels) n += ch.pending.size
    return n - this.#beats
  }

  /** performance.now() when the worker last answered anything (a heartbeat included). */
  get lastHeard(): number {
    return this.#heard
  }

  /** True while the worker is taken for hung: connected, but silent past `hungAfterMs`. */
  get hung(): boolean {
    return this.#hung
  }

  /**
   * Resolves once a connection is up (at once if one is). With `timeoutMs`, rejects with
   * `unavailable` if none comes up in time.
   */
  ready(timeoutMs?: number): Promise<void> {
    if (this.connected) return Promise.resolve()
    if (this.#closed) return Promise.reject(unreachable())
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const onReady = (): void => {
        clearTimeout(timer)
        resolve()
      }
      this.once('ready', onReady)
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.off('ready', onReady)
          reject(unreachable())
        }, timeoutMs)
      }
    })
  }

  /**
   * Runs `op(...args)` in the worker. Trailing `undefined` arguments are not sent (msgpack would
   * turn them into `null`).
   */
  call(op: DriverOperation | WorkerOperation, args: unknown[]): Promise<unknown> {
    if (this.#up === 0 || this.#closed) return Promise.reject(unreachable())
    if (this.#hung) return Promise.reject(hung())
    const ch = this.#pick()
    let n = args.length
    while (n > 0 && args[n - 1] === undefined) n--
    if (n !== args.length) args = args.slice(0, n)
    this.#nextId = (this.#nextId + 1) >>> 0
    const id = this.#nextId
    return new Promise<unknown>((resolve, reject) => {
      try {
        ch.writer!.write({ id, op, args })
      } catch (err) {
        this.#log?.error({ err: err instanceof FrameError ? err.message : err, op }, 'rpc request could not be encoded')
        reject(new MissiveError('internal', undefined, { cause: err }))
        return
      }
      ch.pending.set(id, { resolve, reject, deadline: performance.now() + this.#opts.timeoutMs })
    })
  }

  /**
   * Fails every call waiting for an answer with `err()` now (their answers, if they come, are
   * dropped): the circuit breaker's way to end calls held by a stalled store (proxy/circuit-breaker.ts).
   */
  failPending(err: () => MissiveError): void {
    for (const ch of this.#channels) ch.failAll(err)
  }

  /** Stops reconnecting, drops the connections and fails calls still waiting. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#sweeper)
    clearInterval(this.#heart)
    for (const ch of this.#channels) {
      if (ch.retryTimer) clearTimeout(ch.retryTimer)
      ch.retryTimer = null
      ch.writer?.flush()
      ch.socket?.destroy()
      ch.failAll(unreachable)
    }
  }

  #pick(): Channel {
    const chs = this.#channels
    for (let i = 0; i < chs.length; i++) {
      this.#rr = (this.#rr + 1) % chs.length
      const ch = chs[this.#rr]
      if (ch.connected) return ch
    }
    throw new Error('unreachable: no connected channel while #up > 0')
  }

  #connect(ch: Channel): void {
    if (this.#closed) return
    ch.retryTimer = null
    const socket = net.connect(this.socketPath)
    ch.socket = socket
    const decoder = new FrameDecoder((msg) => this.#onReply(ch, msg), { maxFrameBytes: this.#opts.maxFrameBytes })

    socket.once('connect', () => {
      if (this.#closed) {
        socket.destroy()
        return
      }
      ch.connected = true
      ch.writer = new FrameWriter(socket, { maxFrameBytes: this.#opts.maxFrameBytes, flush: this.#opts.flush })
      ch.retryDelay = this.#opts.reconnectMinMs
      // A new connection is a new chance (a restarted worker): hung is judged afresh.
      this.#heard = performance.now()
      this.#hung = false
      this.#up++
      this.#log?.info({ socket: this.socketPath, connection: ch.index }, 'rpc connected')
      if (this.#up === 1) this.emit('ready')
    })
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk)
      } catch (err) {
        this.#log?.error({ err: (err as Error).message, socket: this.socketPath }, 'rpc: protocol violation, dropping connection')
        socket.destroy()
      }
    })
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // ENOENT/ECONNREFUSED while the worker (re)starts are expected; 'close' follows.
      this.#log?.debug({ err: err.code ?? err.message, socket: this.socketPath }, 'rpc connection error')
    })
    socket.once('close', () => {
      const wasUp = ch.connected
      ch.connected = false
      ch.socket = null
      ch.writer = null
      ch.failAll(unreachable)
      if (wasUp) {
        this.#up--
        this.#log?.warn({ socket: this.socketPath, connection: ch.index }, 'rpc connection lost')
        if (this.#up === 0) this.emit('down')
      }
      if (this.#closed) return
      const delay = wasUp ? this.#opts.reconnectMinMs : ch.retryDelay
      if (!wasUp) ch.retryDelay = Math.min(ch.retryDelay * 2, this.#opts.reconnectMaxMs)
      ch.retryTimer = setTimeout(() => this.#connect(ch), delay)
      ch.retryTimer.unref()
    })
  }

  #onReply(ch: Channel, msg: unknown): void {
    if (!isReply(msg)) {
      this.#log?.warn('rpc: ignoring a message that is not a reply')
      return
    }
    this.#heard = performance.now()
    if (this.#hung) {
      this.#hung = false
      this.#log?.warn({ socket: this.socketPath }, 'rpc: the worker answers again')
    }
    const p = ch.pending.get(msg.id)
    // Missing: the call already timed out (or the id is bogus); the late answer is dropped.
    if (p === undefined) return
    ch.pending.delete(msg.id)
    if (isErrorReply(msg)) p.reject(errorFromWire(msg.e))
    else p.resolve((msg as RpcReply & { r?: unknown }).r)
  }

  /**
   * Sends a heartbeat on every connection that has none outstanding, and judges the worker hung
   * when nothing has been heard from it for `hungAfterMs`: then every call waiting on it fails now.
   */
  #beat(): void {
    if (this.#closed || this.#up === 0) return
    const now = performance.now()
    if (!this.#hung && this.#opts.hungAfterMs > 0 && now - this.#heard > this.#opts.hungAfterMs) {
      this.#hung = true
      this.#log?.error({ socket: this.socketPath, silentMs: Math.round(now - this.#heard) }, 'rpc: the worker is not responding; failing its calls')
      for (const ch of this.#channels) ch.failAll(hung)
    }
    for (const ch of this.#channels) {
      if (!ch.connected || ch.beating) continue
      this.#nextId = (this.#nextId + 1) >>> 0
      const id = this.#nextId
      const done = (): void => {
        ch.beating = false
        this.#beats--
      }
      try {
        ch.writer!.write({ id, op: 'heartbeat', args: [] })
      } catch {
        continue
      }
      ch.beating = true
      this.#beats++
      ch.pending.set(id, { resolve: done, reject: done, deadline: now + this.#opts.timeoutMs })
    }
  }

  #sweep(): void {
    if (this.pendingCalls === 0) return
    const now = performance.now()
    for (const ch of this.#channels) {
      for (const [id, p] of ch.pending) {
        if (p.deadline > now) break
        ch.pending.delete(id)
        p.reject(timedOut())
      }
    }
  }
}

// DataDriver: each operation is one call; its rest parameter is the request's argument array.
defineOperations(RpcDriver.prototype, <K extends DriverOperation>(op: K) =>
  function (this: RpcDriver, ...args: OpArgs<K>): Promise<OpResult<K>> {
    return this.call(op, args) as Promise<OpResult<K>>
  },
)
