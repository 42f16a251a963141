/**
 * The migration runner on the real stores, every pair (SQLite→Redis, Redis→Redis, Redis→SQLite,
 * SQLite→SQLite; Redis: a real redis-server): a live move under posts, claims and deletes keeps
 * every acknowledged message with its id, body, TTL, age, claim (same id, same expiry), the
 * queue's metadata and dead-letter settings, loses none and resurrects none; a delete with a
 * claim id taken before the switch works after it; a runner that dies mid-switch is resumed by
 * another and converges. (The whole service under kill -9 is tests/migration's end-to-end suite.)
 */
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { SqliteCatalog } from '../../catalog/stores/sqlite.js'
import { MigrationRunner } from '../../proxy/migration-runner.js'
import { createLogger } from '../../shared/log.js'
import type { DataDriver, QueueRef } from '../../shared/storage/contract.js'
import { QueueMoved } from '../../shared/storage/errors.js'
import type { MessageRecord } from '../../shared/storage/migration.js'
import { openDriver } from '../../worker/storage/index.js'
import { startRedis, tempDir, waitFor } from '../helpers/index.js'

const log = createLogger('test', process.env.TEST_LOG ?? 'silent')
const server = await startRedis(t, { appendfsync: 'everysec' })
let db = 0

type Kind = 'sqlite' | 'redis'

async function open(t: Test, kind: Kind, dir: string, name: string): Promise<{ uri: string; driver: DataDriver }> {
  const uri = kind === 'sqlite' ? `sqlite:${name}.sqlite` : `${server.url}/${++db % 16}`
  const driver = await openDriver(uri, { dataDir: dir, durability: 'fast' })
  t.teardown(() => driver.close())
  return { uri, driver }
}

const POST = { clientId: randomUUID(), defaultTtl: 3600, postBytes: 16, queuePolicy: true }

/** Every message the store holds for the queue, as stored (fences ignored). */
async function records(d: DataDriver, ref: QueueRef): Promise<MessageRecord[]> {
  const out: MessageRecord[] = []
  for (let after = 0; ; ) {
    const b = await d.readForMigration(ref, after, 500)
    out.push(...b.records)
    after = b.next
    if (b.end) return out
  }
}

/** What a move must keep of a message (the store's sequence is its own). */
const kept = (r: MessageRecord) => {
  const { seq: _seq, ...rest } = r
  return rest
}

/**
 * `driver` with `before` run ahead of each `fenceQueue` call that sets a `moved` fence: what a
 * client does on the source in the instant before the switch fences it.
 */
function beforeMoved(driver: DataDriver, before: (ref: QueueRef) => Promise<void>): DataDriver {
  return new Proxy(driver, {
    get(target, prop) {
      if (prop === 'fenceQueue') {
        return async (ref: QueueRef, fence: Parameters<DataDriver['fenceQueue']>[1], expect: string | null) => {
          if (fence?.state === 'moved') await before(ref)
          return target.fenceQueue(ref, fence, expect)
        }
      }
      const v: unknown = Reflect.get(target, prop)
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
}

async function setup(t: Test, from: Kind, to: Kind, wrapSource?: (d: DataDriver) => DataDriver) {
  const dir = await tempDir(t)
  const catalog = new SqliteCatalog(join(dir, 'catalog.sqlite'))
  t.teardown(() => catalog.close())
  const a = await open(t, from, dir, 'a')
  const b = await open(t, to, dir, 'b')
  const drivers: Record<string, DataDriver> = { a: wrapSource ? wrapSource(a.driver) : a.driver, b: b.driver }
  await catalog.putPool({ name: 'a', uri: a.uri, weight: 1, flavor: null, options: {} })
  await catalog.putPool({ name: 'b', uri: b.uri, weight: 1, flavor: null, options: {} })
  const ref: QueueRef = { project: `p-${randomUUID()}`, queue: 'q' }
  await catalog.place(ref, 'a')
  const runners: MigrationRunner[] = []
  const runner = (owner: string): MigrationRunner => {
    const r = new MigrationRunner({ catalog, reach: (pool) => drivers[pool]!, log, owner, leaseMs: 400, pollMs: 20, batch: 50, journalBatch: 50, maxBackoffMs: 50 })
    runners.push(r)
    return r.start()
  }
  t.teardown(async () => {
    for (const r of runners) await r.stop()
  })
  /** A proxy's retry: the placed pool's driver, again while the queue is fenced there. */
  const client = async <T>(fn: (d: DataDriver) => Promise<T>): Promise<T> => {
    for (;;) {
      const pool = (await catalog.getPlacement(ref))!
      try {
        return await fn(drivers[pool]!)
      } catch (err) {
        if (!(err instanceof QueueMoved)) throw err
        await new Promise((r) => setTimeout(r, 1))
      }
    }
  }
  const ended = async (id: string) => {
    const m = await waitFor(
      async () => {
        const m = await catalog.getMigration(id)
        return m !== null && ['done', 'cancelled', 'failed'].includes(m.state) ? m : null
      },
      { timeoutMs: 30_000, what: 'the migration to end' },
    )
    return m!
  }
  return { catalog, a: a.driver, b: b.driver, ref, runner, client, ended }
}

const pairs: [Kind, Kind][] = [
  ['sqlite', 'redis'],
  ['redis', 'redis'],
  ['redis', 'sqlite'],
  ['sqlite', 'sqlite'],
]

for (const [from, to] of pairs) {
  t.test(`${from} → ${to}`, async (t) => {
    t.test('a live move under traffic keeps every message, claim and setting', async (t) => {
      const { catalog, a, b, ref, runner, client, ended } = await setup(t, from, to)
      const meta = { _max_claim_count: 5, _dead_letter_queue: 'dlq', _dead_letter_queue_messages_ttl: 600, note: 'kept' }
      await a.createQueue(ref, meta)
      const acked: string[] = []
      for (let i = 0; i < 40; i++) acked.push(...(await a.postMessages(ref, Array.from({ length: 10 }, (_, j) => ({ body: JSON.stringify({ i, j }) })), POST)))
      const claim = (await a.createClaim(ref, { ttl: 120, grace: 60, limit: 6 }))!
      const before = new Map((await records(a, ref)).map((r) => [r.id, kept(r)]))
      const m = await catalog.createMigration({ ...ref, from: 'a', to: 'b', rate: 2000, origin: 'admin' })
      runner('one')
      const deleted = new Set<string>()
      const touched = new Set<string>(claim.messages.map((x) => x.id))
      const claims: { id: string; ids: string[] }[] = []
      let rounds = 0
      for (let state = m.state; !['done', 'failed', 'cancelled'].includes(state); rounds++) {
        acked.push(...(await client((d) => d.postMessages(ref, [{ body: `{"live":${rounds}}` }], POST))))
        // Claims and deletes in the first rounds (on a slow machine the move takes many rounds).
        if (rounds % 4 === 1 && rounds < 100) {
          const c = await client((d) => d.createClaim(ref, { ttl: 120, grace: 60, limit: 2 }))
          if (c !== null) {
            claims.push({ id: c.id, ids: c.messages.map((x) => x.id) })
            for (const x of c.messages) touched.add(x.id)
          }
        }
        if (rounds % 3 === 2 && rounds < 100) {
          const victim = acked.find((id) => !deleted.has(id) && !touched.has(id))!
          await client((d) => d.deleteMessage(ref, victim))
          deleted.add(victim)
        }
        state = (await catalog.getMigration(m.id))!.state
        // Pacing of the traffic, not a wait for anything: the SQLite store and catalog answer in
        // microtasks, and a loop that never reaches the timers phase starves the runner's lease
        // renewals and rate-limit timers (a real client's requests arrive as I/O).
        await new Promise((r) => setTimeout(r, 1))
      }
      const end = await ended(m.id)
      t.equal(end.state, 'done')
      t.equal(await catalog.getPlacement(ref), 'b')
      t.ok(rounds > 3, `clients ran throughout (${rounds} rounds)`)
      const got = await records(b, ref)
      const want = acked.filter((id) => !deleted.has(id))
      t.same(got.map((r) => r.id), want, 'every acknowledged message not deleted, in FIFO order, none twice, none resurrected')
      const untouched = got.filter((r) => before.has(r.id) && !touched.has(r.id))
      t.ok(untouched.length > 0, `${untouched.length} messages untouched by the traffic`)
      t.same(untouched.map(kept), untouched.map((r) => before.get(r.id)), 'untouched messages exactly as they were (TTL, age, expiry, claim state)')
      const first = got.filter((r) => r.claimId === claim.id)
      t.same(first.map((r) => r.id), claim.messages.map((x) => x.id), 'the claim from before the move holds the same messages')
      t.same(first.map(kept), first.map((r) => before.get(r.id)), 'with the same expiry')
      for (const c of claims) t.same(got.filter((r) => r.claimId === c.id).map((r) => r.id), c.ids, `claim ${c.id} made during the move`)
      t.same(await b.getQueue(ref), meta, 'metadata and dead-letter settings')
      // A delete with the claim id taken before the switch works after it, on the target.
      await client((d) => d.deleteMessage(ref, claim.messages[0]!.id, claim.id))
      t.equal((await b.getMessage(ref, claim.messages[0]!.id)), null)
      t.equal((await client((d) => d.stats(ref))).total, want.length - 1, 'stats on the target')
      t.equal(await a.countForMigration(ref), 0, 'the source holds nothing')
      t.same(await a.getFence(ref), { token: m.id, to: 'b', state: 'moved' }, 'and keeps its tombstone')
      t.equal(await b.getFence(ref), null)
      t.type(end.pauseMs, 'number')
      t.comment(`${from} → ${to}: ${end.copied} copied, ${end.journalApplied} journal entries, switch pause ${end.pauseMs} ms`)
    })

    t.test('a metadata change made just before the switch fences the source is kept', async (t) => {
      const late = { note: 'changed at the last moment', _max_claim_count: 3 }
      const { catalog, a, b, ref, runner, ended } = await setup(t, from, to, (d) => beforeMoved(d, (r) => d.setQueueMetadata(r, late)))
      await a.createQueue(ref, { note: 'first' })
      await a.postMessages(ref, [{ body: '1' }, { body: '2' }], POST)
      const m = await catalog.createMigration({ ...ref, from: 'a', to: 'b', rate: 0, origin: 'admin' })
      runner('one')
      t.equal((await ended(m.id)).state, 'done')
      // setQueueMetadata is not journalled: only a read after the fence sees this change.
      t.same(await b.getQueue(ref), late)
    })

    t.test('a runner that dies at the switch is resumed by another', async (t) => {
      const { catalog, a, b, ref, runner, ended } = await setup(t, from, to)
      const ids: string[] = []
      for (let i = 0; i < 5; i++) ids.push(...(await a.postMessages(ref, Array.from({ length: 20 }, (_, j) => ({ body: `${i * 20 + j}` })), POST)))
      const m = await catalog.createMigration({ ...ref, from: 'a', to: 'b', rate: 0, origin: 'admin' })
      // The first runner dies once the source is fenced `moved` (the switch began): abandoned
      // there, its lease left to expire, as a kill -9 would leave it.
      const first = runner('first')
      await waitFor(async () => (await a.getFence(ref))?.state === 'moved' || (await catalog.getMigration(m.id))!.state !== 'copying', { what: 'the switch', intervalMs: 1 })
      first.abandon()
      runner('second')
      const end = await ended(m.id)
      t.equal(end.state, 'done')
      t.same((await records(b, ref)).map((r) => r.id), ids)
      t.equal(await a.countForMigration(ref), 0)
    })
  })
}
