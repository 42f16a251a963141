/**
 * Coalescing: calls on one queue made in the same turn of the event loop are handed to one
 * batch function, which answers each call on its own (its own result, or its own error). The
 * Redis driver uses it so concurrent posts to a queue become one postMessages script call,
 * concurrent claims one claimMessages call and concurrent deletes one deleteMessages call.
 * Batches flush on `setImmediate`: every request that arrived in the same I/O phase (all RPC
 * frames read together) joins, at no added latency beyond the end of that phase.
 */

/** One call's outcome inside a batch. */
export type Outcome<R> = { ok: R } | { err: unknown }

interface Pending<Q, R> {
  req: Q
  resolve: (r: R) => void
  reject: (e: unknown) => void
}

export class Coalescer<K, Q, R> {
  readonly #run: (key: K, reqs: Q[]) => Promise<Outcome<R>[]>
  readonly #maxBatch: number
  #pending = new Map<string, { key: K; items: Pending<Q, R>[] }>()
  #scheduled = false

  /**
   * `run` gets the requests of one key in call order and returns one outcome per request; if it
   * throws, every request of the batch fails with that error. At most `maxBatch` requests go to
   * one `run` call.
   */
  constructor(run: (key: K, reqs: Q[]) => Promise<Outcome<R>[]>, maxBatch = 128) {
    this.#run = run
    this.#maxBatch = maxBatch
  }

  submit(id: string, key: K, req: Q): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      let batch = this.#pending.get(id)
      if (batch === undefined) {
        batch = { key, items: [] }
        this.#pending.set(id, batch)
      }
      batch.items.push({ req, resolve, reject })
      if (!this.#scheduled) {
        this.#scheduled = true
        setImmediate(() => this.#flush())
      }
    })
  }

  #flush(): void {
    this.#scheduled = false
    const pending = this.#pending
    this.#pending = new Map()
    for (const { key, items } of pending.values()) {
      for (let i = 0; i < items.length; i += this.#maxBatch) this.#dispatch(key, items.slice(i, i + this.#maxBatch))
    }
  }

  #dispatch(key: K, items: Pending<Q, R>[]): void {
    let p: Promise<Outcome<R>[]>
    try {
      p = this.#run(
        key,
        items.map((i) => i.req),
      )
    } catch (err) {
      p = Promise.reject(err)
    }
    p.then(
      (outcomes) => {
        items.forEach((item, n) => {
          const o = outcomes[n]
          if (o !== undefined && 'ok' in o) item.resolve(o.ok)
          else item.reject(o === undefined ? new Error('coalesced batch returned too few results') : o.err)
        })
      },
      (err: unknown) => {
        for (const item of items) item.reject(err)
      },
    )
  }
}
