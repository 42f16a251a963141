/**
 * A pool served inside the proxy's own process (the pool's `workers` is 0): its storage driver is
 * opened here, behind the same `DataDriver` contract the RPC client implements, instead of in
 * worker processes.
 *
 * Why: on small machines the proxy → worker hop is the dearest part of a request. Each request
 * crosses it twice, and each crossing wakes another process (~17 µs here, a Unix-socket ping-pong
 * of 33 µs) and encodes and decodes an RPC frame. With the driver in the proxy, at 10k msgs/s each
 * way (open loop, Redis pool) the proxy + worker CPU fell from 74–77 % to 45–46 % of a core and p99
 * from 17–27 ms to 11–14 ms (issue 3's note). What it costs: a crash in the storage layer takes
 * the proxy with it, and CPU-heavy storage work runs on the HTTP event loop. docs/pools.md says
 * when to choose it.
 *
 * The driver opens in the background. Until it is open (or while it cannot be: Redis down at
 * start), calls fail at once with 503 and `Retry-After`, like an RPC call to a worker that is not
 * up, and the open is retried every second. A pool the driver refuses (a bad URI, a Redis whose
 * configuration cannot keep the durability promise) is reported by `ready()`.
 */
import { unavailable } from '../shared/errors.js'
import type { Logger } from '../shared/log.js'
import type { DataDriver } from '../shared/storage/contract.js'
import { defineOperations, type DriverOperation, type OperationMethod, type OpArgs, type OpResult } from '../shared/storage/operations.js'
import { openDriver, type OpenDriverOptions } from '../worker/storage/index.js'

/** How long a failed open waits before the next attempt. */
const RETRY_MS = 1000

export class EmbeddedPool {
  /** The contract, answered by the driver once it is open. */
  readonly driver: DataDriver
  #open: DataDriver | undefined
  #opening: Promise<DataDriver> | undefined
  #lastError: unknown
  #closed = false
  #retry: NodeJS.Timeout | undefined

  constructor(
    readonly name: string,
    readonly uri: string,
    readonly options: OpenDriverOptions,
    readonly log: Logger,
  ) {
    // Every operation goes to the open driver, or fails at once while there is none.
    this.driver = defineOperations(
      { kind: 'embedded', close: () => this.close() },
      <K extends DriverOperation>(op: K) =>
        (...args: OpArgs<K>): Promise<OpResult<K>> => {
          const d = this.#open
          if (d !== undefined) return (d[op] as OperationMethod<K>)(...args)
          return Promise.reject(
            unavailable(`The storage of pool ${this.name} is not open yet${this.#lastError ? `: ${(this.#lastError as Error).message}` : ''}.`),
          )
        },
    )
    this.#start()
  }

  #start(): void {
    if (this.#closed) return
    this.#opening = openDriver(this.uri, this.options).then(
      (d) => {
        if (this.#closed) {
          void d.close()
          throw unavailable(`Pool ${this.name} was closed while it opened.`)
        }
        this.#open = d
        this.#lastError = undefined
        this.log.info({ pool: this.name }, 'pool storage open in the proxy')
        return d
      },
      (err: unknown) => {
        this.#lastError = err
        this.log.warn({ pool: this.name, err: (err as Error).message, retryInMs: RETRY_MS }, 'cannot open the pool storage')
        this.#retry = setTimeout(() => this.#start(), RETRY_MS)
        this.#retry.unref()
        throw err
      },
    )
    // Callers that do not wait for readiness must not see an unhandled rejection.
    this.#opening.catch(() => undefined)
  }

  /**
   * Resolves once the driver is open; rejects with the open's own error when the first attempt
   * fails, or after `timeoutMs` — the same promise the RPC client gives for a worker.
   */
  ready(timeoutMs = 10_000): Promise<void> {
    if (this.#open !== undefined) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(unavailable(`The storage of pool ${this.name} did not open within ${timeoutMs} ms.`)), timeoutMs)
      this.#opening!.then(
        () => {
          clearTimeout(timer)
          resolve()
        },
        (err: unknown) => {
          clearTimeout(timer)
          reject(err as Error)
        },
      )
    })
  }

  /** The open driver's dead-letter count (`DataDriver.deadLettered`), and which driver counted it. */
  get deadLettered(): { source: object; n: number } | undefined {
    const d = this.#open
    return d === undefined ? undefined : { source: d, n: d.deadLettered ?? 0 }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#retry)
    const d = this.#open
    this.#open = undefined
    await d?.close()
  }
}
