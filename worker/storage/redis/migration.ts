/**
 * Migration support on Redis (shared/storage/migration.ts): the fence (`missive:f:T`) and the
 * journal (`missive:j:T`) of each queue, both under the queue's hash tag (keys.ts), and the
 * migration operations, each one script call (lua/).
 *
 * Every client script reads the fence first (lua/lib.lua, `fence_check`): one HMGET on a key
 * that does not exist for a queue that is not moving, inside the same atomic call as the
 * operation. The fence key is not one of the nine the queue's data lives in, so deleting the
 * queue leaves it (the `moved` tombstone) and importing can fence a queue before it exists.
 */
import { badRequest } from '../../../shared/errors.js'
import type { Metadata, QueueRef } from '../../../shared/storage/contract.js'
import { FenceConflict } from '../../../shared/storage/errors.js'
import {
  MIGRATION_BATCH_BYTES,
  MIGRATION_BATCH_MAX,
  type ClaimRecord,
  type ImportChange,
  type JournalEntry,
  type JournalPage,
  type MessageRecord,
  type MigrationBatch,
  type QueueFence,
} from '../../../shared/storage/migration.js'
import { queuePolicy } from '../../../shared/storage/queue-policy.js'
import { policyFields, type Ctx } from './context.js'
import { queueKeys } from './keys.js'

/** A record as readForMigration.lua and readJournal.lua return it. */
type RecordTuple = [string, number, number, string, number, number, number, string, number, string, string]
type ClaimTuple = [string, string, number, number]
type CasReply = ['OK', ...unknown[]] | ['CONFLICT', string?, string?, string?]

const clampLimit = (limit: number): number => Math.max(1, Math.min(MIGRATION_BATCH_MAX, Math.floor(limit) || 1))

function toRecord(t: RecordTuple): MessageRecord {
  const rec: MessageRecord = {
    id: t[0],
    seq: Number(t[1]),
    created: Number(t[2]),
    ttl: Number(t[3]),
    expires: Number(t[4]),
    visible: Number(t[5]),
    claimCount: Number(t[6]),
    claimExpires: t[7] === '' ? 0 : Number(t[8]),
    clientId: t[9],
    body: t[10],
  }
  if (t[7] !== '') rec.claimId = t[7]
  return rec
}

const toClaim = (t: ClaimTuple): ClaimRecord => ({ id: t[0], ttl: Number(t[1]), expires: Number(t[2]), updated: Number(t[3]) })

function conflict(ref: QueueRef, r: CasReply): void {
  if (r[0] === 'OK') return
  const current = r[1] === undefined ? null : { state: r[1] as QueueFence['state'], token: String(r[2]), to: String(r[3]) }
  throw new FenceConflict(ref, current)
}

export class RedisMigration {
  readonly #ctx: Ctx
  /** Called after a copy's data is dropped: the queue leaves its project's catalogue. */
  readonly #uncatalogue: (ref: QueueRef) => Promise<void>

  constructor(ctx: Ctx, uncatalogue: (ref: QueueRef) => Promise<void>) {
    this.#ctx = ctx
    this.#uncatalogue = uncatalogue
  }

  async fenceQueue(ref: QueueRef, fence: QueueFence | null | undefined, expect: string | null | undefined): Promise<void> {
    const f = fence ?? null
    const e = expect ?? null
    const args = [e ?? '', e === null ? '0' : '1', f?.state ?? '', f?.token ?? '', f?.to ?? '', this.#ctx.clock()]
    conflict(ref, await this.#ctx.acked(this.#ctx.scripts.run<CasReply>('fenceQueue', queueKeys(ref).listening, args)))
  }

  async getFence(ref: QueueRef): Promise<QueueFence | null> {
    const [state, token, to] = await this.#ctx.redis.hmget(queueKeys(ref).f, 'state', 'token', 'to')
    return state === null ? null : { state: state as QueueFence['state'], token: token ?? '', to: to ?? '' }
  }

  async readForMigration(ref: QueueRef, after: number, limit: number): Promise<MigrationBatch> {
    const from = Number.isFinite(after) && after > 0 ? Math.floor(after) : 0
    const r = await this.#ctx.acked(
      this.#ctx.scripts.run<[string | number, number, RecordTuple[], ClaimTuple[], string, number]>('readForMigration', queueKeys(ref).script, [
        this.#ctx.clock(),
        from,
        clampLimit(limit),
        MIGRATION_BATCH_BYTES,
      ]),
    )
    return {
      next: Number(r[0]),
      end: Number(r[1]) === 1,
      records: r[2].map(toRecord),
      claims: r[3].map(toClaim),
      metadata: r[4] === '' ? null : (JSON.parse(r[4]) as Metadata),
      journal: Number(r[5]) === 1,
    }
  }

  async readJournal(ref: QueueRef, limit: number): Promise<JournalPage> {
    const r = await this.#ctx.scripts.run<[number, [string, string, RecordTuple | ''][], ClaimTuple[]]>('readJournal', queueKeys(ref).script, [
      this.#ctx.clock(),
      clampLimit(limit),
      MIGRATION_BATCH_BYTES,
    ])
    const entries: JournalEntry[] = r[1].map(([id, version, rec]) => ({ id, version: Number(version), record: rec === '' ? null : toRecord(rec) }))
    return { reset: Number(r[0]) === 1, entries, claims: r[2].map(toClaim) }
  }

  async ackJournal(ref: QueueRef, entries: { id: string; version: number }[], reset?: boolean): Promise<void> {
    if (entries.length > MIGRATION_BATCH_MAX) throw badRequest(`at most ${MIGRATION_BATCH_MAX} journal entries per acknowledgement`)
    const args: (string | number)[] = [reset === true ? '1' : '0']
    for (const e of entries) args.push(e.id, e.version)
    await this.#ctx.acked(this.#ctx.scripts.run('ackJournal', queueKeys(ref).script, args))
  }

  async importMessages(ref: QueueRef, token: string, change: ImportChange): Promise<void> {
    const upsert = change.upsert ?? []
    const claims = change.claims ?? []
    const remove = change.remove ?? []
    if (upsert.length > MIGRATION_BATCH_MAX || claims.length > MIGRATION_BATCH_MAX || remove.length > MIGRATION_BATCH_MAX) {
      throw badRequest(`at most ${MIGRATION_BATCH_MAX} records per import`)
    }
    const meta: Metadata | undefined = change.metadata
    const args: (string | number)[] = [
      this.#ctx.clock(),
      token,
      change.reset === true ? '1' : '0',
      meta === undefined ? '0' : '1',
      meta === undefined ? '' : JSON.stringify(meta),
      ...(meta === undefined ? ['', '', '', '', '', ''] : policyFields(queuePolicy(ref.queue, meta))),
      upsert.length,
    ]
    for (const m of upsert) {
      args.push(m.id, m.created, m.ttl, m.expires, m.visible, m.claimCount, m.claimId ?? '', m.claimExpires, m.clientId, m.body)
    }
    args.push(claims.length)
    for (const c of claims) args.push(c.id, c.ttl, c.expires, c.updated)
    args.push(remove.length, ...remove)
    const r = await this.#ctx.acked(this.#ctx.scripts.run<CasReply>('importMessages', queueKeys(ref).script, args))
    conflict(ref, r)
    // Catalogued like a queue a post created: listed, and visited by the collector.
    if (Number(r[1]) === 1) await this.#ctx.catalogue(ref)
  }

  async countForMigration(ref: QueueRef): Promise<number> {
    return Number(await this.#ctx.scripts.run<number>('countForMigration', queueKeys(ref).script, [this.#ctx.clock()]))
  }

  async dropQueueData(ref: QueueRef, token: string): Promise<void> {
    conflict(ref, await this.#ctx.acked(this.#ctx.scripts.run<CasReply>('dropQueueData', queueKeys(ref).script, [token])))
    await this.#uncatalogue(ref)
  }
}
