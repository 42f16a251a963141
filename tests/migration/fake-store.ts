/**
 * An in-memory store of one pool, implementing the migration operations with the semantics of
 * shared/storage/migration.ts (fences as compare-and-set, the journal, the copy cursor, import)
 * plus the few client operations the runner tests drive traffic with (post, claim, delete,
 * purge, metadata). Client operations honour fences exactly as the stores do: `moved` and
 * `importing` refuse with `QueueMoved`, `journal` serves and journals every change of an existing
 * message (posts are not journalled; purge and delete journal a reset).
 *
 * `hook(op, ref)` runs before every migration operation: tests make it throw (a failing store),
 * or abandon the runner there (a crash at that point).
 */
import { randomUUID } from 'node:crypto'
import type { Metadata, QueueRef } from '../../shared/storage/contract.js'
import { FenceConflict, QueueMoved } from '../../shared/storage/errors.js'
import type { MigratingStore } from '../../proxy/migration-runner.js'
import type { ClaimRecord, ImportChange, JournalPage, MessageRecord, MigrationBatch, QueueFence } from '../../shared/storage/migration.js'

interface Q {
  seq: number
  /** By id; Map order is FIFO (seq order) since ids are appended in order. */
  messages: Map<string, MessageRecord>
  claims: Map<string, ClaimRecord>
  metadata: Metadata | null
}

interface Journal {
  entries: Map<string, number>
  reset: boolean
}

const key = (ref: QueueRef): string => `${ref.project}/${ref.queue}`

export class FakeStore implements MigratingStore {
  readonly queues = new Map<string, Q>()
  readonly fences = new Map<string, QueueFence>()
  readonly journals = new Map<string, Journal>()
  /** Called before each migration operation (name, queue). */
  hook: (op: string, ref: QueueRef) => void = () => {}
  /** Added to what `countForMigration` says, while positive calls remain (a store that miscounts). */
  miscount = { by: 0, calls: 0 }
  #version = 0

  constructor(readonly name: string) {}

  #q(ref: QueueRef, create: boolean): Q | undefined {
    let q = this.queues.get(key(ref))
    if (q === undefined && create) {
      q = { seq: 0, messages: new Map(), claims: new Map(), metadata: null }
      this.queues.set(key(ref), q)
    }
    return q
  }

  /** Refuses a client operation on a fenced queue; journals under `journal`. */
  #client(ref: QueueRef): Journal | undefined {
    const f = this.fences.get(key(ref))
    if (f !== undefined && f.state !== 'journal') throw new QueueMoved(ref, f)
    return f === undefined ? undefined : this.journals.get(key(ref))
  }

  #journal(j: Journal | undefined, id: string): void {
    if (j === undefined) return
    j.entries.delete(id)
    j.entries.set(id, ++this.#version)
  }

  // ---- client operations (traffic) ----

  post(ref: QueueRef, body: string): string {
    this.#client(ref)
    const q = this.#q(ref, true)!
    const id = randomUUID()
    const now = Date.now()
    q.messages.set(id, { id, seq: ++q.seq, body, clientId: 'c', ttl: 3600, created: now, expires: now + 3_600_000, visible: now, claimCount: 0, claimExpires: 0 })
    return id
  }

  /** Claims up to `limit` unclaimed messages; returns the claim id and the ids claimed. */
  claim(ref: QueueRef, limit: number): { id: string; ids: string[] } {
    const j = this.#client(ref)
    const q = this.#q(ref, true)!
    const id = randomUUID()
    const now = Date.now()
    const ids: string[] = []
    for (const m of q.messages.values()) {
      if (ids.length >= limit) break
      if (m.claimId !== undefined && m.claimExpires > now) continue
      m.claimId = id
      m.claimExpires = now + 60_000
      m.claimCount++
      ids.push(m.id)
      this.#journal(j, m.id)
    }
    q.claims.set(id, { id, ttl: 60, expires: now + 60_000, updated: now })
    return { id, ids }
  }

  delete(ref: QueueRef, id: string, claimId?: string): boolean {
    const j = this.#client(ref)
    const q = this.#q(ref, false)
    const m = q?.messages.get(id)
    if (m === undefined) return false
    if (m.claimId !== undefined && m.claimExpires > Date.now() && m.claimId !== claimId) throw new Error(`message ${id} is claimed`)
    q!.messages.delete(id)
    this.#journal(j, id)
    return true
  }

  purge(ref: QueueRef): void {
    const j = this.#client(ref)
    const q = this.#q(ref, false)
    if (q === undefined) return
    q.messages.clear()
    q.claims.clear()
    if (j !== undefined) {
      j.reset = true
      j.entries.clear()
    }
  }

  setMetadata(ref: QueueRef, meta: Metadata): void {
    this.#client(ref)
    this.#q(ref, true)!.metadata = meta
  }

  async getQueue(ref: QueueRef): Promise<Metadata | null> {
    this.#client(ref)
    const q = this.#q(ref, false)
    return q === undefined ? null : (q.metadata ?? {})
  }

  /** The queue's messages in order, as stored (for assertions). */
  messages(ref: QueueRef): MessageRecord[] {
    return [...(this.#q(ref, false)?.messages.values() ?? [])]
  }

  // ---- migration operations ----

  async fenceQueue(ref: QueueRef, fence: QueueFence | null, expect: string | null): Promise<void> {
    this.hook('fenceQueue', ref)
    const k = key(ref)
    const cur = this.fences.get(k) ?? null
    if ((cur?.token ?? null) !== expect) throw new FenceConflict(ref, cur)
    if (fence === null) {
      this.fences.delete(k)
      this.journals.delete(k)
      return
    }
    this.fences.set(k, { ...fence })
    if (fence.state === 'journal') {
      // The same token again keeps the journal (a retry); another starts afresh.
      if (cur?.token !== fence.token || !this.journals.has(k)) this.journals.set(k, { entries: new Map(), reset: false })
    } else if (fence.state !== 'moved' || cur?.state !== 'journal') {
      // journal → moved keeps it for the final drain; anything else has none.
      this.journals.delete(k)
    }
  }

  async getFence(ref: QueueRef): Promise<QueueFence | null> {
    this.hook('getFence', ref)
    return this.fences.get(key(ref)) ?? null
  }

  #activeClaims(q: Q, records: MessageRecord[]): ClaimRecord[] {
    const now = Date.now()
    const ids = new Set(records.filter((r) => r.claimId !== undefined && r.claimExpires > now).map((r) => r.claimId!))
    return [...ids].map((id) => q.claims.get(id)).filter((c): c is ClaimRecord => c !== undefined)
  }

  async readForMigration(ref: QueueRef, after: number, limit: number): Promise<MigrationBatch> {
    this.hook('readForMigration', ref)
    const q = this.#q(ref, false)
    // As the stores do: the metadata with every batch (null: no queue), fences ignored.
    if (q === undefined) return { records: [], claims: [], next: after, end: true, metadata: null }
    const all = [...q.messages.values()].filter((m) => m.seq > after)
    const records = all.slice(0, limit).map((m) => ({ ...m }))
    const next = records.length === 0 ? after : records[records.length - 1]!.seq
    return { records, claims: this.#activeClaims(q, records), next, end: all.length <= limit, metadata: q.metadata ?? {} }
  }

  async readJournal(ref: QueueRef, limit: number): Promise<JournalPage> {
    this.hook('readJournal', ref)
    const j = this.journals.get(key(ref))
    if (j === undefined) return { entries: [], claims: [], reset: false }
    const q = this.#q(ref, false)
    const entries = [...j.entries].slice(0, limit).map(([id, version]) => {
      const m = q?.messages.get(id)
      return { id, version, record: m === undefined ? null : { ...m } }
    })
    const records = entries.map((e) => e.record).filter((r): r is MessageRecord => r !== null)
    return { entries, claims: q === undefined ? [] : this.#activeClaims(q, records), reset: j.reset }
  }

  async ackJournal(ref: QueueRef, entries: { id: string; version: number }[], reset?: boolean): Promise<void> {
    this.hook('ackJournal', ref)
    const j = this.journals.get(key(ref))
    if (j === undefined) return
    for (const e of entries) if (j.entries.get(e.id) === e.version) j.entries.delete(e.id)
    if (reset) j.reset = false
  }

  async importMessages(ref: QueueRef, token: string, change: ImportChange): Promise<void> {
    this.hook('importMessages', ref)
    const cur = this.fences.get(key(ref)) ?? null
    if (cur === null || cur.token !== token || cur.state !== 'importing') throw new FenceConflict(ref, cur)
    const q = this.#q(ref, true)!
    if (change.reset) {
      q.messages.clear()
      q.claims.clear()
      q.metadata = null
    }
    if (change.metadata !== undefined) q.metadata = change.metadata
    for (const r of change.upsert ?? []) {
      const have = q.messages.get(r.id)
      if (have === undefined) q.messages.set(r.id, { ...r, seq: ++q.seq })
      else {
        const { ttl, expires, visible, claimCount, claimId, claimExpires } = r
        Object.assign(have, { ttl, expires, visible, claimCount, claimId, claimExpires })
      }
    }
    for (const c of change.claims ?? []) q.claims.set(c.id, { ...c })
    for (const id of change.remove ?? []) q.messages.delete(id)
  }

  async countForMigration(ref: QueueRef): Promise<number> {
    this.hook('countForMigration', ref)
    const n = this.#q(ref, false)?.messages.size ?? 0
    if (this.miscount.calls > 0) {
      this.miscount.calls--
      return n + this.miscount.by
    }
    return n
  }

  async dropQueueData(ref: QueueRef, token: string): Promise<void> {
    this.hook('dropQueueData', ref)
    const k = key(ref)
    const cur = this.fences.get(k) ?? null
    if (cur === null || cur.token !== token || cur.state === 'journal') throw new FenceConflict(ref, cur)
    this.queues.delete(k)
    this.journals.delete(k)
    if (cur.state === 'importing') this.fences.delete(k)
  }
}
