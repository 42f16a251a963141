/**
 * A whole migration between two stores, with the store operations alone (shared/storage/
 * migration.ts): "copy, journal, fence, switch" driven by a small reference runner written here,
 * while a client keeps posting, claiming, renewing, releasing, deleting and popping on the
 * source between the copy's batches. Afterwards the target must hold exactly what the source
 * held at the switch: every message (id, body, TTL, age, delay, claim, claim count, client id
 * for echo), the claims, the metadata and the stats — and a claim taken on the source must work
 * on the target. Every pair of stores: SQLite→Redis, Redis→SQLite, Redis→Redis, SQLite→SQLite.
 */
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import t from 'tap'
import { manualClock } from '../../shared/clock.js'
import type { DataDriver, Message, PostOptions, QueueRef } from '../../shared/storage/contract.js'
import { QueueMoved } from '../../shared/storage/errors.js'
import type { ImportChange, QueueFence } from '../../shared/storage/migration.js'
import { parseRedisUri } from '../../shared/storage/redis-uri.js'
import { RedisDriver } from '../../worker/storage/redis/driver.js'
import { SqliteDriver } from '../../worker/storage/sqlite/driver.js'
import { startRedis, tempDir } from '../helpers/index.js'
import type { TapTest } from '../contract/suite.js'

type Clock = ReturnType<typeof manualClock>

const SECOND = 1000
const PRODUCER = randomUUID()
const opts = (over: Partial<PostOptions> = {}): PostOptions => ({ clientId: PRODUCER, defaultTtl: 3600, postBytes: 100, queuePolicy: true, ...over })

const server = await startRedis(t, { appendfsync: 'everysec' })
const clock: Clock = manualClock()

const openRedis = (db: number): Promise<RedisDriver> =>
  RedisDriver.open({ ...parseRedisUri(`${server.url}/${db}?durability=fast`, 'fast'), clock, gcIntervalMs: 0 })

async function stores(t: TapTest): Promise<Record<string, () => Promise<DataDriver>>> {
  const dir = await tempDir(t, 'missive-migrate-')
  let n = 0
  const track = <D extends DataDriver>(d: D): D => {
    t.teardown(() => d.close())
    return d
  }
  return {
    sqlite: async () => track(new SqliteDriver({ path: join(dir, `s${n++}.sqlite`), durability: 'fast', clock, gcIntervalMs: 0 })),
    redis: async () => track(await openRedis(n++ % 16)),
  }
}

/** What a client can observe of a queue, ages included (the clock is shared). */
async function view(driver: DataDriver, ref: QueueRef, claimIds: string[]) {
  const items: Message[] = []
  let marker: string | undefined
  for (;;) {
    const page = await driver.listMessages(ref, { limit: 20, marker, clientId: 'reader', echo: true, includeClaimed: true, includeDelayed: true })
    items.push(...page.items)
    if (page.next === undefined || page.items.length === 0) break
    marker = page.next
  }
  const notMine = await driver.listMessages(ref, { limit: 100, clientId: PRODUCER, echo: false, includeClaimed: true, includeDelayed: true })
  const stats = await driver.stats(ref)
  const claims = []
  for (const id of claimIds) claims.push(await driver.getClaim(ref, id))
  return {
    metadata: await driver.getQueue(ref),
    messages: items.map(({ id, body, ttl, age, created, claimId, claimCount }) => ({ id, body, ttl, age, created, claimId, claimCount })),
    notMine: notMine.items.map((m) => m.id),
    stats: { total: stats.total, claimed: stats.claimed, free: stats.free, oldest: stats.oldest?.id, newest: stats.newest?.id },
    claims,
  }
}

/**
 * The reference runner, as migration.ts describes it; `between` runs client operations on the
 * source after each copy batch, while the source journals.
 */
async function migrate(src: DataDriver, dst: DataDriver, ref: QueueRef, between: (round: number) => Promise<void>, batch = 3): Promise<void> {
  const token = randomUUID()
  const journal: QueueFence = { token, to: 'target', state: 'journal' }
  await src.fenceQueue(ref, journal, null)
  await dst.fenceQueue(ref, { token, to: 'target', state: 'importing' }, null)
  let cursor = 0
  const drain = async (): Promise<void> => {
    for (;;) {
      const page = await src.readJournal(ref, batch)
      if (page.reset) {
        await dst.importMessages(ref, token, { reset: true })
        cursor = 0
        await src.ackJournal(ref, [], true)
      }
      if (page.entries.length === 0) return
      const change: ImportChange = { upsert: [], remove: [], claims: page.claims }
      for (const e of page.entries) {
        if (e.record === null) change.remove!.push(e.id)
        else if (e.record.seq <= cursor) change.upsert!.push(e.record)
      }
      await dst.importMessages(ref, token, change)
      await src.ackJournal(ref, page.entries.map(({ id, version }) => ({ id, version })))
    }
  }
  const copy = async (during: boolean): Promise<Record<string, unknown> | null | undefined> => {
    let round = 0
    for (;;) {
      const b = await src.readForMigration(ref, cursor, batch)
      await dst.importMessages(ref, token, { upsert: b.records, claims: b.claims })
      cursor = b.next
      if (during) await between(round++)
      await drain()
      if (b.end) return b.metadata
    }
  }
  await copy(true)
  await src.fenceQueue(ref, { ...journal, state: 'moved' }, token)
  const metadata = await copy(false)
  await drain()
  if (metadata !== null && metadata !== undefined) await dst.importMessages(ref, token, { metadata })
  await dst.fenceQueue(ref, null, token)
  await src.dropQueueData(ref, token)
}

for (const [from, to] of [
  ['sqlite', 'redis'],
  ['redis', 'sqlite'],
  ['redis', 'redis'],
  ['sqlite', 'sqlite'],
] as const) {
  t.test(`${from} → ${to}: a live queue moves whole, with its claims, while a client works on it`, async (t) => {
    const open = await stores(t)
    const src = await open[from]()
    const dst = await open[to]()
    const ref = { project: `p-${randomUUID()}`, queue: 'orders' }
    await src.createQueue(ref, { _default_message_delay: 1, _max_claim_count: 3, _dead_letter_queue: 'dead', note: 'kept' })
    const ids = await src.postMessages(
      ref,
      Array.from({ length: 20 }, (_, i) => ({ body: JSON.stringify({ n: i, text: 'ü ✓ "quoted"' }), ttl: 300 + i, delay: i % 5 === 0 ? 60 : 0 })),
      opts(),
    )
    await src.postMessages(ref, [{ body: '{"other":true}', delay: 0 }], opts({ clientId: 'someone-else' }))
    clock.advance(2 * SECOND)
    const early = (await src.createClaim(ref, { ttl: 600, grace: 60, limit: 3 }))!
    t.equal(early.messages.length, 3)
    const claimIds = [early.id]
    let later: string | undefined
    const between = async (round: number): Promise<void> => {
      clock.advance(SECOND)
      switch (round) {
        case 0: {
          await src.postMessages(ref, [{ body: '"posted during the copy"', delay: 0 }], opts())
          await src.deleteMessage(ref, early.messages[0].id, early.id)
          const c = (await src.createClaim(ref, { ttl: 30, grace: 10, limit: 2 }))!
          later = c.id
          claimIds.push(c.id)
          break
        }
        case 1:
          await src.renewClaim(ref, later!, { ttl: 900, grace: 0 })
          await src.deleteMessages(ref, [ids[7], ids[19]])
          break
        case 2: {
          // Claimed, released, claimed again: a claim count of 2 to carry over.
          const c = (await src.createClaim(ref, { ttl: 60, grace: 0, limit: 1 }))!
          await src.releaseClaim(ref, c.id)
          const again = (await src.createClaim(ref, { ttl: 60, grace: 0, limit: 1 }))!
          t.equal(again.messages[0].claimCount, 2)
          claimIds.push(again.id)
          await src.popMessages(ref, 1)
          break
        }
        case 3:
          // Imported with its messages in an earlier batch: the release must reach the target.
          await src.releaseClaim(ref, later!)
          await src.setQueueMetadata(ref, { _default_message_delay: 1, _max_claim_count: 3, _dead_letter_queue: 'dead', note: 'changed' })
          break
      }
    }
    // The last client operation happens inside `between`; the expected state is read by a
    // migrate() that pauses just before the switch.
    let expected: unknown
    const paused = async (round: number): Promise<void> => {
      await between(round)
      expected = await view(src, ref, claimIds)
    }
    await migrate(src, dst, ref, paused)
    t.ok(expected, 'the copy ran several batches with clients in between')

    await t.rejects(src.getQueue(ref), QueueMoved, 'the source refuses clients after the switch')
    t.equal(await src.countForMigration(ref), 0, 'the source dropped its data')
    const got = await view(dst, ref, claimIds)
    t.same(got, expected, 'the target holds exactly what the source held')
    const g = got as Awaited<ReturnType<typeof view>>
    t.ok(g.messages.length >= 15, `messages copied (${g.messages.length})`)
    t.ok(g.messages.some((m) => m.claimId === early.id), 'claims kept')
    t.ok(g.messages.some((m) => m.claimCount > 1), 'claim counts kept')
    t.same(g.notMine.length, 1, 'client ids kept (echo filtering)')
    t.equal((g.metadata as { note: string }).note, 'changed', 'metadata written during the copy')

    // The claims work on the target: the same claim id deletes; the claim expires when it did.
    const held = g.messages.find((m) => m.claimId === early.id)!
    await dst.deleteMessage(ref, held.id, early.id)
    t.equal(await dst.getMessage(ref, held.id), null, 'deleted with the claim id taken on the source')
    const claim = await dst.getClaim(ref, early.id)
    t.ok(claim)
    clock.advance(700 * SECOND)
    t.equal(await dst.getClaim(ref, early.id), null, 'and the claim ends when it would have')
    // The delayed messages became visible on schedule, and FIFO order holds for claims.
    const next = (await dst.createClaim(ref, { ttl: 30, grace: 0, limit: 50 }))!
    const order = next.messages.map((m) => g.messages.findIndex((x) => x.id === m.id))
    t.same([...order].sort((a, b) => a - b), order, 'claims take the copy in source order')
  })
}

t.test('a purge during the copy resets the target and restarts the cursor', async (t) => {
  const open = await stores(t)
  const src = await open.redis()
  const dst = await open.sqlite()
  const ref = { project: `p-${randomUUID()}`, queue: 'q' }
  await src.postMessages(ref, Array.from({ length: 10 }, (_, i) => ({ body: String(i) })), opts())
  let kept: string[] = []
  await migrate(src, dst, ref, async (round) => {
    if (round === 1) {
      await src.purge(ref)
      kept = await src.postMessages(ref, [{ body: '"after"' }, { body: '"purge"' }], opts())
    }
  })
  const page = await dst.listMessages(ref, { limit: 50, clientId: 'r', echo: true, includeClaimed: true })
  t.same(page.items.map((m) => m.id), kept, 'only what followed the purge')
})
