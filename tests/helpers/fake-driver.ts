/**
 * A small in-memory `DataDriver` for wire tests (RPC, supervisor): just enough behaviour to check
 * that values, errors and timing cross a process boundary unchanged. Not a storage reference —
 * the contract suite covers real drivers.
 *
 * Special queue names:
 * - `boom`: `stats` throws a plain Error whose message holds a "secret" (must never reach clients);
 * - `sleep-<ms>`: `stats` answers after that many milliseconds;
 * - `unavailable`: `stats` throws `unavailable` with retryAfter 7.
 */
import { MissiveError, notFound } from '../../shared/errors.js'
import type {
  Claim,
  DataDriver,
  ListQueuesOptions,
  Message,
  MessageListing,
  Metadata,
  NewMessage,
  PoppedMessage,
  QueueListing,
  QueueRef,
  QueueStats,
} from '../../shared/storage/contract.js'
import { FenceConflict } from '../../shared/storage/errors.js'
import type { ImportChange, JournalPage, MigrationBatch, QueueFence } from '../../shared/storage/migration.js'

export const SECRET = 'hunter2-secret-in-a-stack'

const key = (ref: QueueRef): string => `${ref.project}\u0000${ref.queue}`
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

export class FakeDriver implements DataDriver {
  readonly kind = 'fake'
  readonly queues = new Map<string, Metadata>()
  readonly messages = new Map<string, { id: string; body: string; ttl: number }[]>()
  /** Every call as received: op and its arguments (after the wire). */
  readonly calls: { op: string; args: unknown[] }[] = []
  closed = false
  #seq = 0

  #record(op: string, args: unknown[]): void {
    this.calls.push({ op, args })
  }

  async ping(): Promise<void> {
    this.#record('ping', [])
  }

  async close(): Promise<void> {
    this.closed = true
  }

  async createQueue(ref: QueueRef, metadata: Metadata): Promise<boolean> {
    this.#record('createQueue', [ref, metadata])
    if (this.queues.has(key(ref))) return false
    this.queues.set(key(ref), metadata)
    return true
  }

  async getQueue(ref: QueueRef): Promise<Metadata | null> {
    return this.queues.get(key(ref)) ?? null
  }

  async setQueueMetadata(ref: QueueRef, metadata: Metadata): Promise<void> {
    if (!this.queues.has(key(ref))) throw notFound(`Queue ${ref.queue} does not exist`)
    this.queues.set(key(ref), metadata)
  }

  async deleteQueue(ref: QueueRef): Promise<void> {
    this.queues.delete(key(ref))
    this.messages.delete(key(ref))
  }

  async listQueues(project: string, opts: ListQueuesOptions): Promise<QueueListing> {
    this.#record('listQueues', [project, opts])
    const names = [...this.queues.keys()]
      .filter((k) => k.startsWith(`${project}\u0000`))
      .map((k) => k.slice(project.length + 1))
      .sort()
      .filter((n) => opts.marker === undefined || n > opts.marker)
    const items = names.slice(0, opts.limit).map((name) => ({ name }))
    return items.length === opts.limit ? { items, next: items[items.length - 1].name } : { items }
  }

  async stats(ref: QueueRef): Promise<QueueStats> {
    if (ref.queue === 'boom') throw new Error(`driver exploded: ${SECRET}`)
    if (ref.queue === 'unavailable') throw new MissiveError('unavailable', 'backend down', { retryAfter: 7 })
    const m = /^sleep-(\d+)$/.exec(ref.queue)
    if (m) await sleep(Number(m[1]))
    const total = this.messages.get(key(ref))?.length ?? 0
    return { total, claimed: 0, free: total }
  }

  async storedBytes(ref: QueueRef): Promise<number> {
    return (this.messages.get(key(ref)) ?? []).reduce((n, m) => n + JSON.stringify(m.body).length, 0)
  }

  async purge(ref: QueueRef): Promise<void> {
    this.messages.delete(key(ref))
  }

  async postMessages(ref: QueueRef, messages: NewMessage[]): Promise<string[]> {
    const list = this.messages.get(key(ref)) ?? []
    this.messages.set(key(ref), list)
    if (!this.queues.has(key(ref))) this.queues.set(key(ref), {})
    return messages.map((m) => {
      const id = `m${++this.#seq}`
      list.push({ id, body: m.body, ttl: m.ttl ?? 3600 })
      return id
    })
  }

  async listMessages(ref: QueueRef): Promise<MessageListing> {
    const list = this.messages.get(key(ref)) ?? []
    return { items: list.map((m) => this.#message(m)), includeDelayed: true }
  }

  /** `id` of the form `echo-<n>-<delayMs>` answers after the delay with a message of that id. */
  async getMessage(ref: QueueRef, id: string): Promise<Message | null> {
    const echo = /^echo-(\d+)-(\d+)$/.exec(id)
    if (echo) {
      await sleep(Number(echo[2]))
      return { id, ttl: 60, age: 0, created: 0, body: JSON.stringify({ n: Number(echo[1]) }), claimCount: 0 }
    }
    const big = /^big-(\d+)$/.exec(id)
    if (big) return { id, ttl: 60, age: 0, created: 0, body: 'x'.repeat(Number(big[1])), claimCount: 0 }
    const m = this.messages.get(key(ref))?.find((x) => x.id === id)
    return m === undefined ? null : this.#message(m)
  }

  async getMessages(ref: QueueRef, ids: string[]): Promise<Message[]> {
    const out: Message[] = []
    for (const id of ids) {
      const m = await this.getMessage(ref, id)
      if (m) out.push(m)
    }
    return out
  }

  async deleteMessage(ref: QueueRef, id: string, claimId?: string): Promise<void> {
    this.#record('deleteMessage', [ref, id, claimId])
    const list = this.messages.get(key(ref))
    if (list) this.messages.set(key(ref), list.filter((m) => m.id !== id))
  }

  async deleteMessages(ref: QueueRef, ids: string[], claimIds?: string[]): Promise<void> {
    this.#record('deleteMessages', [ref, ids, claimIds])
    const list = this.messages.get(key(ref))
    if (list) this.messages.set(key(ref), list.filter((m) => !ids.includes(m.id)))
  }

  async popMessages(ref: QueueRef, limit: number): Promise<PoppedMessage[]> {
    const list = this.messages.get(key(ref)) ?? []
    const popped = list.splice(0, limit)
    return popped.map((m) => ({ id: m.id, ttl: m.ttl, age: 0, body: m.body, claimId: 'c', claimCount: 1 }))
  }

  async createClaim(): Promise<Claim | null> {
    return null
  }

  async getClaim(): Promise<Claim | null> {
    return null
  }

  async renewClaim(ref: QueueRef, claimId: string): Promise<void> {
    throw notFound(`Claim ${claimId} does not exist`)
  }

  async releaseClaim(): Promise<void> {}

  /** Marks asked for (`listen`), in order. */
  readonly listens: { ref: QueueRef; ms: number }[] = []

  async listen(ref: QueueRef, ms: number): Promise<void> {
    this.listens.push({ ref, ms })
  }

  // Migration: fences are kept (so fence errors cross the wire); the copy has nothing to copy.
  readonly fences = new Map<string, QueueFence>()

  async fenceQueue(ref: QueueRef, fence: QueueFence | null, expect: string | null): Promise<void> {
    this.#record('fenceQueue', [ref, fence, expect])
    const current = this.fences.get(key(ref)) ?? null
    if ((current?.token ?? null) !== expect) throw new FenceConflict(ref, current)
    if (fence === null) this.fences.delete(key(ref))
    else this.fences.set(key(ref), fence)
  }

  async getFence(ref: QueueRef): Promise<QueueFence | null> {
    return this.fences.get(key(ref)) ?? null
  }

  async readForMigration(): Promise<MigrationBatch> {
    return { records: [], claims: [], next: 0, end: true, metadata: null }
  }

  async readJournal(): Promise<JournalPage> {
    return { entries: [], claims: [], reset: false }
  }

  async ackJournal(): Promise<void> {}

  async importMessages(ref: QueueRef, token: string, change: ImportChange): Promise<void> {
    this.#record('importMessages', [ref, token, change])
  }

  async countForMigration(ref: QueueRef): Promise<number> {
    return this.messages.get(key(ref))?.length ?? 0
  }

  async dropQueueData(ref: QueueRef, token: string): Promise<void> {
    this.#record('dropQueueData', [ref, token])
  }

  #message(m: { id: string; body: string; ttl: number }): Message {
    return { id: m.id, ttl: m.ttl, age: 0, created: 0, body: m.body, claimCount: 0 }
  }
}
