/**
 * Queues on Redis: the queue record (metadata, sequence counter), the per-project catalogue, and
 * the queue-wide operations (stats, purge, delete).
 *
 * The queue record lives in the queue's slot and is authoritative; the catalogue lives in the
 * project's slot (so a Cluster could place them apart) and is kept in step by ordering: a
 * create writes the record then catalogues it, a delete drops the record, then the catalogue
 * entry, then re-catalogues the queue if a racing create brought it back. Listing checks each
 * catalogued name against its record, so a name left behind by a crash is never listed.
 */
import type { ListQueuesOptions, Metadata, QueueEntry, QueueListing, QueueRef, QueueStats } from '../../../shared/storage/contract.js'
import { QueueNotFound } from '../../../shared/storage/errors.js'
import { queuePolicy } from '../../../shared/storage/queue-policy.js'
import { ageOf, checkFence, policyFields, type Ctx } from './context.js'
import { catalogueKey, queueKeys, queueTag, SWEEP_KEY } from './keys.js'

const EMPTY_META = '{}'

export class RedisQueues {
  readonly #ctx: Ctx
  /** Called with a queue and its new dead-letter queue name whenever this process writes metadata. */
  readonly #onMetadata: (ref: QueueRef, dlq: string) => void

  constructor(ctx: Ctx, onMetadata: (ref: QueueRef, dlq: string) => void) {
    this.#ctx = ctx
    this.#onMetadata = onMetadata
  }

  /** Parses stored metadata; it was serialised by this driver, so it is always an object. */
  parse(text: string): Metadata {
    return text === EMPTY_META ? {} : (JSON.parse(text) as Metadata)
  }

  async createQueue(ref: QueueRef, metadata: Metadata): Promise<boolean> {
    const fields = policyFields(queuePolicy(ref.queue, metadata))
    const created = await this.#ctx.acked(
      this.#ctx.scripts.run<number>('createQueue', queueKeys(ref).script, [this.#ctx.clock(), JSON.stringify(metadata), ...fields]),
    )
    checkFence(ref, created)
    // Catalogued even when it existed: repairs a catalogue entry a crash left out.
    await this.#ctx.catalogue(ref)
    if (created === 1) this.#onMetadata(ref, fields[3])
    return created === 1
  }

  async getQueue(ref: QueueRef): Promise<Metadata | null> {
    const text = await this.#ctx.scripts.run<string | null>('getQueue', queueKeys(ref).script, [])
    checkFence(ref, text)
    return text === null ? null : this.parse(text)
  }

  async setQueueMetadata(ref: QueueRef, metadata: Metadata): Promise<void> {
    const fields = policyFields(queuePolicy(ref.queue, metadata))
    const done = await this.#ctx.acked(
      this.#ctx.scripts.run<number>('setQueueMetadata', queueKeys(ref).script, [JSON.stringify(metadata), ...fields]),
    )
    checkFence(ref, done)
    if (done === 0) throw new QueueNotFound(ref)
    this.#onMetadata(ref, fields[3])
  }

  async deleteQueue(ref: QueueRef): Promise<void> {
    const keys = queueKeys(ref)
    checkFence(ref, await this.#ctx.acked(this.#ctx.scripts.run('deleteQueue', keys.script, [])))
    await this.#uncatalogue(ref)
  }

  /** Drops the catalogue entries of a queue, then puts them back if the queue exists again. */
  async uncatalogue(ref: QueueRef): Promise<void> {
    return this.#uncatalogue(ref)
  }

  async #uncatalogue(ref: QueueRef): Promise<void> {
    const { redis } = this.#ctx
    const catalogue = catalogueKey(ref.project)
    await this.#ctx.acked(redis.zrem(catalogue, ref.queue), catalogue)
    await redis.zrem(SWEEP_KEY, queueTag(ref))
    if ((await redis.exists(queueKeys(ref).q)) === 1) await this.#ctx.catalogue(ref)
  }

  async purge(ref: QueueRef): Promise<void> {
    checkFence(ref, await this.#ctx.acked(this.#ctx.scripts.run('purgeQueue', queueKeys(ref).script, [])))
  }

  async listQueues(project: string, opts: ListQueuesOptions): Promise<QueueListing> {
    const { redis } = this.#ctx
    const key = catalogueKey(project)
    const filters = opts.filters === undefined ? [] : Object.entries(opts.filters)
    const name = opts.name ?? ''
    const items: QueueEntry[] = []
    const batch = Math.max(opts.limit * 2, 50)
    // ZRANGEBYLEX bounds: the marker is exclusive. Names are raw bytes, so a marker is always a
    // valid bound once prefixed with '('.
    let from = opts.marker === undefined || opts.marker === '' ? '-' : `(${opts.marker}`
    while (opts.limit > 0 && items.length < opts.limit) {
      const names = await redis.zrangebylex(key, from, '+', 'LIMIT', 0, batch)
      if (names.length === 0) break
      from = `(${names[names.length - 1]}`
      const wanted = name === '' ? names : names.filter((n) => n.includes(name))
      if (wanted.length > 0) {
        // One pipelined read of every candidate's record: it proves the queue exists and
        // carries the metadata that filters and `detailed` need. On a Cluster the records live
        // in many slots (a pipeline must stay on one node): concurrent reads instead.
        let metas: [Error | null, unknown][]
        if (this.#ctx.cluster) {
          metas = await Promise.all(wanted.map((n) => redis.hget(queueKeys({ project, queue: n }).q, 'meta').then((v): [null, unknown] => [null, v])))
        } else {
          const pipe = redis.pipeline()
          for (const n of wanted) pipe.hget(queueKeys({ project, queue: n }).q, 'meta')
          metas = (await pipe.exec()) ?? []
        }
        for (let i = 0; i < wanted.length && items.length < opts.limit; i++) {
          const [err, text] = metas[i] as [Error | null, string | null]
          if (err !== null) throw err
          if (text === null) continue
          let meta: Metadata | undefined
          if (filters.length > 0) {
            meta = this.parse(text)
            const m = meta
            if (!filters.every(([k, v]) => Object.hasOwn(m, k) && m[k] === v)) continue
          }
          const entry: QueueEntry = { name: wanted[i] }
          if (opts.detailed === true) entry.metadata = meta ?? this.parse(text)
          items.push(entry)
        }
      }
      if (names.length < batch) break
    }
    const listing: QueueListing = { items }
    if (items.length > 0) listing.next = items[items.length - 1].name
    if (opts.withCount === true) listing.count = await redis.zcard(key)
    return listing
  }

  /** Marks a listener on the queue for `ms` (lua/listenQueue.lua). Not WAITed for: a mark lost to a failover delays a waiter to its last try, no more. */
  async listen(ref: QueueRef, ms: number): Promise<void> {
    checkFence(ref, await this.#ctx.scripts.run('listenQueue', queueKeys(ref).listening, [this.#ctx.clock(), Math.max(0, Math.ceil(ms))]))
  }

  /** Bytes of Redis memory the queue's messages take (lua/storedBytes.lua): one script call, O(1) per key. */
  async storedBytes(ref: QueueRef): Promise<number> {
    return Number(await this.#ctx.scripts.run<number>('storedBytes', queueKeys(ref).script, []))
  }

  async stats(ref: QueueRef): Promise<QueueStats> {
    const now = this.#ctx.clock()
    const r = await this.#ctx.scripts.run<(string | number)[]>('stats', queueKeys(ref).script, [now])
    checkFence(ref, r)
    const total = Number(r[0])
    const claimed = Number(r[1])
    const stats: QueueStats = { total, claimed, free: total - claimed, delayed: Number(r[2] ?? 0) }
    if (total > 0 && r.length >= 7) {
      const oldCreated = Number(r[4])
      const newCreated = Number(r[6])
      stats.oldest = { id: String(r[3]), age: ageOf(oldCreated, now), created: oldCreated }
      stats.newest = { id: String(r[5]), age: ageOf(newCreated, now), created: newCreated }
    }
    return stats
  }
}
