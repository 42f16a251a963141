/**
 * A circuit breaker in front of each worker of a pool (docs/ha.md, "Failure isolation"): a pool
 * whose store is down answers its requests at once with 503 + Retry-After instead of holding
 * them until a store timeout, and every other pool keeps serving.
 *
 * A breaker is *closed* (calls pass through) or *open* (calls fail at once with `unavailable`).
 * It opens when
 * - `failures` calls in a row fail because the store or the worker cannot be reached (RPC
 *   unreachable, timed out or hung; the store's `unreachable`) — not for a queue's own 503s
 *   (a busy or interrupted post, a queue being moved);
 * - the pool *stalls*: calls are in flight, nothing at all (call or check) has completed for
 *   `stallMs`, and the worker itself still answers (its heartbeats) — a stopped Redis (SIGSTOP)
 *   or a network black hole, which would otherwise hold each request until the store's command
 *   timeout. The calls in flight then fail at once with `unavailable` through `abort` (whether a
 *   write among them was carried out is unknown, as after any 503). A silent worker is the worker's own hang
 *   detection's business (proxy/rpc-client.ts);
 * - a check fails.
 *
 * A check runs every `checkMs` whatever the state: it asks the worker for its store's facts
 * (`info`: a round trip to the store, with its role and replication state), so an idle pool's
 * outage is seen too, and a successful check is what closes an open breaker. The facts also tell
 * a failover: the changes of server the worker's driver counted since the last check (it notes
 * the server at every reconnection, so a failover that no check saw in between still counts),
 * or, from a new driver (a restarted worker), a server other than the last check saw.
 *
 * Hot path, closed breaker: one promise per call (a `then` with handlers made once) and two
 * counters; no clock read, no timer. Open: no call at all.
 */
import { performance } from 'node:perf_hooks'
import { MissiveError } from '../shared/errors.js'
import type { DataDriver } from '../shared/storage/contract.js'
import { StorageError } from '../shared/storage/errors.js'
import { defineOperations, invoke, type DriverOperation, type OpArgs, type OpResult } from '../shared/storage/operations.js'

/** What a worker reports about its store (worker/main.ts `storeInfo`). */
export interface StoreInfo {
  /** `master`, `replica` (Redis), or `embedded` (SQLite). */
  role: string
  /** The server's identity (Redis `run_id`): a change is a failover or a restart. */
  server?: string
  /** Replicas connected and online (a Redis master). */
  replicas?: number
  /** Seconds since the slowest online replica last acknowledged (a Redis master with replicas). */
  lagSeconds?: number
  /** The Sentinel master name, for a Sentinel pool. */
  master?: string
  /**
   * The store driver's identity (a restarted worker has a new one) and how many changes of
   * server it has seen itself, at every reconnection (worker/storage/redis/driver.ts): the
   * failover counter follows these, so a failover between two checks is not missed.
   */
  boot?: string
  changes?: number
  /** When the driver last saw a change of server (ms since the epoch). */
  lastChange?: number
}

export interface CircuitBreakerOptions {
  /** Consecutive outage failures that open the breaker (config `poolBreakerFailures`). Default 3. */
  failures?: number
  /** Nothing completing for this long while calls wait opens it (config `poolStallMs`; 0: never). Default 2000. */
  stallMs?: number
  /** How often the store is checked (config `poolCheckMs`; 0: never, and an open breaker stays open). Default 500. */
  checkMs?: number
  /**
   * performance.now() when the worker was last heard from (an RPC worker's answers and
   * heartbeats). Given, a stall counts only while the worker is heard from: a worker that is
   * silent itself (stopped, stuck) is left to the worker's own hang detection and the RPC timeout
   * (`workerHungAfterMs`, `rpcTimeoutMs`), which may wait a pause out (docs/operations.md).
   */
  lastHeard?: () => number
  /**
   * Fails every call in flight with `err()` (an RPC worker's pending calls: their answers, if
   * they come, are dropped). Called when the pool stalls; without it, those calls wait for the
   * store's own timeout and only new calls fail at once.
   */
  abort?: (err: () => MissiveError) => void
  /** The check: the store's facts (default: a ping, with no facts). */
  info?: () => Promise<StoreInfo | null>
  /** Called when the breaker opens or closes. */
  onChange?: (open: boolean, reason: string) => void
  /** Called when the store answers as another server than before (a failover or a restart). */
  onFailover?: (from: string, to: string, count: number) => void
}

/** The description of a call refused by an open breaker. */
export const OPEN_DESCRIPTION = 'The message store of this queue is not reachable. Please try again in a few seconds.'
/** The description of a call failed because its pool stalled. */
export const STALL_DESCRIPTION =
  'The message store of this queue did not answer in time; the request may or may not have been carried out. Please try again in a few seconds.'

/** Is `err` the store or the worker being unreachable (not a 503 about one queue)? */
export function isOutage(err: unknown): boolean {
  if (!(err instanceof MissiveError) || err.code !== 'unavailable') return false
  // Typed storage errors: only the store being unreachable; `busy`, `interrupted` and a queue
  // being moved are about one queue. RPC failures (unreachable, timed out, hung) are plain.
  if (err instanceof StorageError) return err.kind === 'store_unavailable' && (err as StorageError & { reason?: string }).reason === 'unreachable'
  return true
}

const breakers = new WeakMap<DataDriver, CircuitBreaker>()

/** The breaker in front of `driver` (a driver returned by `CircuitBreaker.driver`), if any. */
export const breakerOf = (driver: DataDriver): CircuitBreaker | undefined => breakers.get(driver)

export class CircuitBreaker {
  /** The wrapped driver: every operation goes through the breaker. */
  readonly driver: DataDriver
  readonly #inner: DataDriver
  readonly #failuresToOpen: number
  readonly #stallMs: number
  readonly #checkMs: number
  readonly #info: () => Promise<StoreInfo | null>
  readonly #lastHeard: (() => number) | undefined
  readonly #onChange: ((open: boolean, reason: string) => void) | undefined
  readonly #onFailover: ((from: string, to: string, count: number) => void) | undefined
  readonly #abort: ((err: () => MissiveError) => void) | undefined
  /** Calls passed to the inner driver and not settled yet. */
  #inflight = 0
  /** Calls settled so far (the tick compares it with `#seen` to see progress without a clock read per call). */
  #settled = 0
  #seen = 0
  readonly #timer: NodeJS.Timeout | undefined
  #open = false
  #reason = ''
  #failures = 0
  /** performance.now() at the tick that last saw progress (a call or check settled, or nothing waiting). */
  #progress = performance.now()
  #checking = false
  /** The check running while `#checking`. */
  #checked: Promise<void> = Promise.resolve()
  #lastCheck = -Infinity
  #facts: StoreInfo | null = null
  #failovers = 0
  #lastFailover: number | null = null
  #trips = 0
  #closed = false
  /** When this breaker started (ms since the epoch). */
  readonly #started = Date.now()

  constructor(inner: DataDriver, opts: CircuitBreakerOptions = {}) {
    this.#inner = inner
    this.#failuresToOpen = opts.failures ?? 3
    this.#stallMs = opts.stallMs ?? 2000
    this.#checkMs = opts.checkMs ?? 500
    this.#info = opts.info ?? (() => inner.ping().then(() => null))
    this.#onChange = opts.onChange
    this.#lastHeard = opts.lastHeard
    this.#onFailover = opts.onFailover
    this.#abort = opts.abort
    const ticks = [this.#checkMs, this.#stallMs / 4].filter((ms) => ms > 0)
    if (ticks.length > 0) {
      this.#timer = setInterval(() => this.#tick(), Math.max(10, Math.min(...ticks)))
      this.#timer.unref()
    }
    const self = this
    this.driver = defineOperations(
      {
        kind: inner.kind,
        close: () => {
          self.close()
          return inner.close()
        },
      },
      <K extends DriverOperation>(op: K) =>
        (...args: OpArgs<K>): Promise<OpResult<K>> =>
          self.#call(op, args),
    )
    breakers.set(this.driver, this)
  }

  /** True while calls fail at once. */
  get isOpen(): boolean {
    return this.#open
  }

  /** Why the breaker opened, or the latest failure since while it stays open ('' if it never opened). */
  get reason(): string {
    return this.#reason
  }

  /** The store's facts as of the last successful check (null before one, or without facts). */
  get info(): StoreInfo | null {
    return this.#facts
  }

  /** Times the store answered as another server (failovers and restarts) since this breaker started. */
  get failovers(): number {
    return this.#failovers
  }

  /** When that last happened (ms since the epoch), or null. */
  get lastFailover(): number | null {
    return this.#lastFailover
  }

  /** Times the breaker opened. */
  get trips(): number {
    return this.#trips
  }

  /** Stops checking; calls still pass (or fail) as the state says. Idempotent. */
  close(): void {
    this.#closed = true
    clearInterval(this.#timer)
  }

  /** Runs a check now (the timer does it every `checkMs`); resolves when it (or the one already running) is done. */
  check(): Promise<void> {
    if (this.#closed) return Promise.resolve()
    if (this.#checking) return this.#checked
    this.#checking = true
    this.#lastCheck = performance.now()
    // An idle pool: the stall clock starts with the check.
    if (this.#inflight === 0) this.#progress = this.#lastCheck
    return (this.#checked = this.#info().then(
      (info) => {
        this.#checking = false
        this.#settled++
        this.#failures = 0
        this.#note(info)
        if (this.#open) this.#setOpen(false, 'the store answers again')
      },
      (err: unknown) => {
        this.#checking = false
        this.#settled++
        this.#trip(`check failed: ${(err as Error)?.message ?? String(err)}`)
      },
    ))
  }

  #note(info: StoreInfo | null): void {
    if (info === null) return
    const prev = this.#facts
    let changes = 0
    if (prev === null) {
      // The first facts: changes the driver saw since this breaker started count too — a
      // failover before the pool's first check completed (a busy host, a quick one) was missed.
      if (info.changes !== undefined && info.lastChange !== undefined && info.lastChange >= this.#started) changes = info.changes
    } else {
      if (info.boot !== undefined && info.boot === prev.boot && info.changes !== undefined && prev.changes !== undefined) {
        // The same driver: what it counted since (it samples every reconnection; two checks
        // alone miss a failover and failback, or a restart, between them).
        changes = Math.max(0, info.changes - prev.changes)
      } else if (prev.server !== undefined && info.server !== undefined && info.server !== prev.server) {
        changes = 1
      }
    }
    if (changes > 0) {
      this.#failovers += changes
      this.#lastFailover = Date.now()
      this.#onFailover?.(prev?.server ?? '', info.server ?? '', changes)
    }
    this.#facts = info
  }

  #call<K extends DriverOperation>(op: K, args: OpArgs<K>): Promise<OpResult<K>> {
    if (this.#open) return Promise.reject(new MissiveError('unavailable', OPEN_DESCRIPTION, { retryAfter: this.#retryAfter() }))
    this.#inflight++
    // Handlers made once: the only allocation per call is the promise `then` returns.
    return invoke(this.#inner, op, args).then(this.#ok, this.#failed) as Promise<OpResult<K>>
  }

  readonly #ok = <T>(result: T): T => {
    this.#inflight--
    this.#settled++
    this.#failures = 0
    return result
  }

  readonly #failed = (err: unknown): never => {
    this.#inflight--
    this.#settled++
    if (!isOutage(err)) this.#failures = 0
    else if (!this.#open && ++this.#failures >= this.#failuresToOpen) this.#trip(`${this.#failures} calls in a row failed: ${(err as Error).message}`)
    throw err
  }

  #retryAfter(): number {
    return Math.max(1, Math.ceil(this.#checkMs / 1000))
  }

  #tick(): void {
    if (this.#closed) return
    const now = performance.now()
    if (this.#settled !== this.#seen || (this.#inflight === 0 && !this.#checking)) {
      this.#seen = this.#settled
      this.#progress = now
    } else if (
      // Stalled: something waits (a call or the check), nothing settled for stallMs, and the
      // worker itself is alive (heard from since): its store is what does not answer.
      this.#stallMs > 0 &&
      now - this.#progress > this.#stallMs &&
      (this.#lastHeard === undefined || this.#lastHeard() > this.#progress)
    ) {
      this.#progress = now
      this.#trip(`nothing answered for ${this.#stallMs} ms`, true)
    }
    if (this.#checkMs > 0 && !this.#checking && now - this.#lastCheck >= this.#checkMs) void this.check()
  }

  /**
   * Opens the breaker. On a stall, also fails the calls in flight through `abort` (they would
   * wait for the store's own timeout).
   */
  #trip(reason: string, stalled = false): void {
    this.#failures = 0
    if (!this.#open) this.#setOpen(true, reason)
    // Already open: the latest reason is the one worth showing (a store back up but refused, say).
    else this.#reason = reason
    if (stalled && this.#inflight > 0) this.#abort?.(() => new MissiveError('unavailable', STALL_DESCRIPTION, { retryAfter: this.#retryAfter() }))
  }

  #setOpen(open: boolean, reason: string): void {
    this.#open = open
    if (open) {
      this.#reason = reason
      this.#trips++
    }
    this.#onChange?.(open, reason)
  }
}
