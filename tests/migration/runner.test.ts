/**
 * The migration runner (proxy/migration-runner.ts) against in-memory stores that implement the
 * migration semantics (./fake-store.ts) and a real catalog (SQLite file and a real
 * redis-server): a live move keeps every acknowledged message, claim and metadata and loses none;
 * a cancel rolls back; a crash (the runner abandoned, its lease left to expire) at every step is
 * resumed by another runner and converges; a count mismatch never switches; a permanent error
 * fails and rolls back; a deleted queue cancels.
 */
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { CatalogStore } from '../../catalog/contract.js'
import type { Migration } from '../../catalog/migration-record.js'
import { RedisCatalog } from '../../catalog/stores/redis.js'
import { SqliteCatalog } from '../../catalog/stores/sqlite.js'
import { MigrationRunner, type MigrationObserver } from '../../proxy/migration-runner.js'
import { MissiveError, unavailable } from '../../shared/errors.js'
import { createLogger } from '../../shared/log.js'
import type { QueueRef } from '../../shared/storage/contract.js'
import { QueueMoved } from '../../shared/storage/errors.js'
import { startRedis, tempDir, waitFor } from '../helpers/index.js'
import { FakeStore } from './fake-store.js'

const log = createLogger('test', 'silent')

type CatalogFactory = (t: Test) => Promise<CatalogStore>

/** What the runner reported, summed. */
class Counts implements MigrationObserver {
  runningNow = 0
  movedMessages = 0
  movedBytes = 0
  journalEntries = 0
  errors = 0
  outcomes: string[] = []
  pauses: number[] = []
  running(d: number): void {
    this.runningNow += d
  }
  moved(n: number, b: number): void {
    this.movedMessages += n
    this.movedBytes += b
  }
  journal(n: number): void {
    this.journalEntries += n
  }
  ended(outcome: string): void {
    this.outcomes.push(outcome)
  }
  error(): void {
    this.errors++
  }
  pause(s: number): void {
    this.pauses.push(s)
  }
}

async function setup(t: Test, openCatalog: CatalogFactory) {
  const catalog = await openCatalog(t)
  for (const name of ['a', 'b']) await catalog.putPool({ name, uri: `sqlite:${name}.sqlite`, weight: 1, flavor: null, options: {} })
  const stores: Record<string, FakeStore> = { a: new FakeStore('a'), b: new FakeStore('b') }
  const ref: QueueRef = { project: `p-${randomUUID()}`, queue: 'q' }
  await catalog.place(ref, 'a')
  const counts = new Counts()
  const runners: MigrationRunner[] = []
  const runner = (opts: { owner?: string; catalog?: CatalogStore; leaseMs?: number } = {}): MigrationRunner => {
    const r = new MigrationRunner({
      catalog: opts.catalog ?? catalog,
      reach: (pool) => stores[pool] ?? (() => { throw unavailable(`Pool ${pool} has no running worker.`) })(),
      log,
      owner: opts.owner,
      leaseMs: opts.leaseMs ?? 300,
      pollMs: 20,
      batch: 10,
      journalBatch: 10,
      maxBackoffMs: 40,
      observer: counts,
    })
    runners.push(r)
    return r.start()
  }
  t.teardown(async () => {
    for (const r of runners) await r.stop()
  })
  /** A proxy's view of the queue: the placed pool's store, retried while the queue is fenced there. */
  const client = async <T>(fn: (s: FakeStore) => T): Promise<T> => {
    for (;;) {
      const pool = (await catalog.getPlacement(ref))!
      try {
        return fn(stores[pool]!)
      } catch (err) {
        if (!(err instanceof QueueMoved)) throw err
        await new Promise((r) => setTimeout(r, 1))
      }
    }
  }
  const ended = (id: string): Promise<Migration> =>
    waitFor(
      async () => {
        const m = await catalog.getMigration(id)
        return m !== null && ['done', 'cancelled', 'failed'].includes(m.state) ? m : null
      },
      { timeoutMs: 20_000, what: `migration ${id} to end` },
    ) as Promise<Migration>
  return { catalog, stores, ref, counts, runner, client, ended }
}

/** The fields a move must keep, per message, in order. */
const kept = (s: FakeStore, ref: QueueRef) =>
  s.messages(ref).map((m) => ({ id: m.id, body: m.body, ttl: m.ttl, created: m.created, expires: m.expires, visible: m.visible, claimCount: m.claimCount, claimId: m.claimId, claimExpires: m.claimExpires }))

function runnerSuite(t: Test, openCatalog: CatalogFactory): void {
  t.test('a live move keeps every message (order, claims, metadata) while clients post and delete', async (t) => {
    const { catalog, stores, ref, counts, runner, client, ended } = await setup(t, openCatalog)
    const a = stores.a!
    const acked: string[] = []
    for (let i = 0; i < 295; i++) acked.push(a.post(ref, JSON.stringify({ i })))
    a.setMetadata(ref, { _max_claim_count: 3, note: 'kept' })
    const claim = a.claim(ref, 7)
    const m = await catalog.createMigration({ ...ref, from: 'a', to: 'b', rate: 1000, origin: 'admin' })
    runner()
    const deleted = new Set<string>()
    // When each delete had been answered (ms): one answered after the switch may have happened after it.
    const deletedAt: number[] = []
    let i = 0
    let duringCopy = 0
    let state = 'copying'
    // Traffic until the migration ends: posts, deletes of acknowledged messages, a claim delete.
    while (!['done', 'failed', 'cancelled'].includes(state)) {
      acked.push(await client((s) => s.post(ref, JSON.stringify({ live: i }))))
      if (i % 3 === 0) {
        const victim = acked.find((id) => !deleted.has(id) && !claim.ids.includes(id))!
        if (await client((s) => s.delete(ref, victim))) {
          deleted.add(victim)
          deletedAt.push(Date.now())
        }
      }
      if (i === 5) {
        await client((s) => s.delete(ref, claim.ids[0]!, claim.id))
        deleted.add(claim.ids[0]!)
        deletedAt.push(Date.now())
      }
      i++
      state = (await catalog.getMigration(m.id))!.state
      if (state === 'copying') duringCopy++
      await new Promise((r) => setTimeout(r, 2))
    }
    const end = await ended(m.id)
    t.equal(end.state, 'done')
    t.equal(await catalog.getPlacement(ref), 'b', 'placed on the target')
    t.equal(await catalog.activeMigration(ref), null)
    const b = stores.b!
    const want = acked.filter((id) => !deleted.has(id))
    t.same(b.messages(ref).map((x) => x.id), want, 'every acknowledged message not deleted, in FIFO order, none twice')
    t.ok(duringCopy > 0, `clients posted and deleted during the copy (${duringCopy} of ${i} rounds)`)
    const claimed = b.messages(ref).filter((x) => x.claimId === claim.id)
    t.same(claimed.map((x) => x.id), claim.ids.slice(1), 'the claim holds the same messages on the target')
    t.ok(claimed.every((x) => x.claimExpires > Date.now()))
    t.ok(b.queues.get(`${ref.project}/${ref.queue}`)!.claims.has(claim.id), 'the claim record moved')
    t.same(await b.getQueue(ref), { _max_claim_count: 3, note: 'kept' }, 'metadata')
    t.equal(a.messages(ref).length, 0, 'the source was cleaned')
    t.same(a.fences.get(`${ref.project}/${ref.queue}`), { token: m.id, to: 'b', state: 'moved' }, 'its moved tombstone stays')
    t.equal(b.fences.get(`${ref.project}/${ref.queue}`), undefined, 'the target serves')
    t.type(end.pauseMs, 'number')
    t.ok(end.switchedAt! > 0 && end.finished! >= end.switchedAt!)
    // What the source held at the switch: at most what is left now plus the deletes that may have
    // come after the switch (answered after it); posts after it only make what is left larger.
    const lateDeletes = deletedAt.filter((at) => at >= end.switchedAt!).length
    t.ok(end.sourceCount! > 0 && end.sourceCount! <= want.length + lateDeletes, `the count checked at the switch (${end.sourceCount}; ${want.length} left, ${lateDeletes} deletes answered after it)`)
    t.ok(end.copied >= 295)
    t.equal(end.error, null)
    t.same(counts.outcomes, ['done'])
    t.equal(counts.pauses.length, 1)
    t.ok(counts.movedMessages >= 295 && counts.movedBytes > 0)
    t.ok(counts.journalEntries > 0, 'deletes during the copy went through the journal')
    await waitFor(() => counts.runningNow === 0, { what: 'the runner to let go' })
  })

  t.test('a batch read ahead (while the previous one was imported) and changed before its import: the newer state lands', async (t) => {
    const { catalog, stores, ref, counts, runner, ended } = await setup(t, openCatalog)
    const a = stores.a!
    const ids: string[] = []
    for (let i = 0; i < 40; i++) ids.push(a.post(ref, JSON.stringify({ i })))
    const m = await catalog.createMigration({ ...ref, from: 'a', to: 'b', rate: 0, origin: 'admin' })
    let claim: { id: string; ids: string[] } | undefined
    a.hook = (op) => {
      // The first drain runs once batch 1 (ids 0–9) is imported and batch 2 (ids 10–19) was read
      // ahead: claim ids 0–12 and delete id 13 now, after that read.
      if (op !== 'readJournal' || claim !== undefined) return
      t.equal(stores.b!.messages(ref).length, 10, 'one batch imported when the first drain runs')
      claim = a.claim(ref, 13)
      t.ok(a.delete(ref, ids[13]!))
    }
    runner()
    const end = await ended(m.id)
    t.equal(end.state, 'done')
    t.same(claim!.ids, ids.slice(0, 13))
    const b = stores.b!
    t.same(b.messages(ref).map((x) => x.id), ids.filter((_, i) => i !== 13), 'the message deleted after the read-ahead is not resurrected')
    const held = b.messages(ref).filter((x) => x.claimId === claim!.id).map((x) => x.id)
    t.same(held, ids.slice(0, 13), 'the claims made after the read-ahead hold on the target, in the batch read ahead too')
    t.ok(b.queues.get(`${ref.project}/${ref.queue}`)!.claims.has(claim!.id), 'the claim record moved')
    // Right the first time: a stale read-ahead would have needed the switch's count check to copy
    // everything again (and a stale claim state would not even change the count).
    t.equal(counts.movedMessages, 39, `each message copied once (${counts.movedMessages})`)
    t.equal(end.copied, 39)
  })

  t.test('cancel during the copy rolls back: the source serves as before, the target copy is gone', async (t) => {
    const { catalog, stores, ref, runner, ended } = await setup(t, openCatalog)
    const a = stores.a!
    // 400 messages at 100/s: four seconds of copying, time enough to cancel on a loaded machine.
    for (let i = 0; i < 400; i++) a.post(ref, `${i}`)
    const before = kept(a, ref)
    const m = await catalog.createMigration({ ...ref, from: 'a', to: 'b', rate: 100, origin: 'admin' })
    runner()
    await waitFor(async () => (await catalog.getMigration(m.id))!.copied >= 10, { what: 'some copying' })
    t.equal((await catalog.cancelMigration(m.id)).state, 'cancelling')
    const end = await ended(m.id)
    t.equal(end.state, 'cancelled')
    t.equal(end.error, null)
    t.equal(await catalog.getPlacement(ref), 'a')
    t.same(kept(a, ref), before, 'the source is untouched')
    t.equal(a.fences.size, 0, 'and unfenced')
    a.post(ref, 'after')
    t.equal(stores.b!.queues.size, 0, 'the target holds nothing')
    t.equal(stores.b!.fences.size, 0)
  })

  const points: [string, string, number][] = [
    ['b', 'fenceQueue', 1],
    ['a', 'fenceQueue', 1],
    ['a', 'readForMigration', 2],
    ['b', 'importMessages', 3],
    ['a', 'readJournal', 2],
    ['a', 'ackJournal', 1],
    ['a', 'fenceQueue', 2],
    ['a', 'countForMigration', 2],
    ['b', 'fenceQueue', 2],
    ['a', 'dropQueueData', 1],
  ]
  for (const [pool, op, nth] of points) {
    t.test(`a runner that dies before call ${nth} of ${op} on ${pool === 'a' ? 'the source' : 'the target'}: another resumes and converges`, async (t) => {
      const { catalog, stores, ref, runner, ended } = await setup(t, openCatalog)
      const a = stores.a!
      for (let i = 0; i < 45; i++) a.post(ref, `${i}`)
      const claim = a.claim(ref, 4)
      const m = await catalog.createMigration({ ...ref, from: 'a', to: 'b', rate: 0, origin: 'admin' })
      // Changes during the copy, so the journal has work: a delete and a claim once the copy began.
      let reads = 0
      const deleted = a.messages(ref)[20]!.id
      let second: { id: string; ids: string[] } | undefined
      let calls = 0
      let first: MigrationRunner | undefined
      const crash = (name: string): void => {
        if (name === 'readForMigration' && ++reads === 2 && a.fences.get(`${ref.project}/${ref.queue}`)?.state === 'journal') {
          a.delete(ref, deleted)
          second = a.claim(ref, 3)
        }
      }
      a.hook = (name) => {
        crash(name)
        if (pool === 'a' && name === op && ++calls === nth && first !== undefined) {
          first.abandon()
          throw new Error(`crashed before ${op}`)
        }
      }
      stores.b!.hook = (name) => {
        if (pool === 'b' && name === op && ++calls === nth && first !== undefined) {
          first.abandon()
          throw new Error(`crashed before ${op}`)
        }
      }
      first = runner({ owner: 'first' })
      await waitFor(() => calls >= nth, { what: `call ${nth} of ${op}`, timeoutMs: 20_000 })
      const resumed = runner({ owner: 'second' })
      const end = await ended(m.id)
      t.equal(end.state, 'done')
      t.equal(end.leaseOwner, null)
      t.ok(resumed.owner === 'second')
      const b = stores.b!
      const ids = b.messages(ref).map((x) => x.id)
      const want = kept(a, ref).length === 0 ? undefined : null
      t.equal(want, undefined, 'the source was cleaned')
      t.equal(ids.length, 44, 'every message but the deleted one')
      t.notOk(ids.includes(deleted))
      t.equal(new Set(ids).size, ids.length, 'none twice')
      t.same(b.messages(ref).filter((x) => x.claimId === claim.id).map((x) => x.id), claim.ids)
      if (second !== undefined) t.same(b.messages(ref).filter((x) => x.claimId === second!.id).map((x) => x.id), second.ids, 'a claim made during the copy')
      t.equal(await catalog.getPlacement(ref), 'b')
    })
  }

  t.test('a runner that dies right after the catalog switched: the resumed one cleans up', async (t) => {
    const { catalog, stores, ref, runner, ended } = await setup(t, openCatalog)
    for (let i = 0; i < 30; i++) stores.a!.post(ref, `${i}`)
    const m = await catalog.createMigration({ ...ref, from: 'a', to: 'b', rate: 0, origin: 'admin' })
    let first: MigrationRunner | undefined
    let crashed = false
    stores.a!.hook = (name) => {
      // dropQueueData comes right after finishSwitch: the switch is in the catalog already.
      if (name === 'dropQueueData' && !crashed) {
        crashed = true
        first!.abandon()
        throw new Error('crashed')
      }
    }
    first = runner({ owner: 'first' })
    await waitFor(() => crashed, { what: 'the crash' })
    t.equal((await catalog.getMigration(m.id))!.state, 'cleaning')
    runner({ owner: 'second' })
    t.equal((await ended(m.id)).state, 'done')
    t.equal(stores.b!.messages(ref).length, 30)
    t.equal(stores.a!.messages(ref).length, 0)
  })

  t.test('counts that differ never switch: the copy starts again', async (t) => {
    const { catalog, stores, ref, runner, ended } = await setup(t, openCatalog)
    for (let i = 0; i < 25; i++) stores.a!.post(ref, `${i}`)
    const m = await catalog.createMigration({ ...ref, from: 'a', to: 'b', rate: 0, origin: 'admin' })
    // The target miscounts for three checks (one attempt's worth): the copy restarts from 0.
    stores.b!.miscount = { by: 1, calls: 3 }
    let placementWhileMiscounting: string | null = null
    stores.b!.hook = (name, r) => {
      if (name === 'countForMigration' && stores.b!.miscount.calls > 0) void catalog.getPlacement(r).then((p) => (placementWhileMiscounting ??= p))
    }
    runner()
    const end = await ended(m.id)
    t.equal(end.state, 'done')
    t.equal(placementWhileMiscounting, 'a', 'not switched while the counts differed')
    t.equal(stores.b!.miscount.calls, 0)
    t.ok(end.copied >= 25)
    t.equal(stores.b!.messages(ref).length, 25)
  })

  t.test('a purge during the copy resets the target and copies again', async (t) => {
    const { catalog, stores, ref, runner, ended } = await setup(t, openCatalog)
    const a = stores.a!
    for (let i = 0; i < 40; i++) a.post(ref, `${i}`)
    const m = await catalog.createMigration({ ...ref, from: 'a', to: 'b', rate: 0, origin: 'admin' })
    let reads = 0
    const after: string[] = []
    a.hook = (name) => {
      if (name === 'readForMigration' && ++reads === 3) {
        a.purge(ref)
        for (let i = 0; i < 5; i++) after.push(a.post(ref, `new ${i}`))
      }
    }
    runner()
    t.equal((await ended(m.id)).state, 'done')
    t.same(stores.b!.messages(ref).map((x) => x.id), after, 'only what was posted after the purge')
  })

  t.test('a permanent error (a foreign fence on the target) fails the migration and rolls back', async (t) => {
    const { catalog, stores, ref, counts, runner, ended } = await setup(t, openCatalog)
    for (let i = 0; i < 5; i++) stores.a!.post(ref, `${i}`)
    stores.b!.fences.set(`${ref.project}/${ref.queue}`, { token: 'someone-else', to: 'x', state: 'importing' })
    const m = await catalog.createMigration({ ...ref, from: 'a', to: 'b', rate: 0, origin: 'admin' })
    runner()
    const end = await ended(m.id)
    t.equal(end.state, 'failed')
    t.match(end.error, /fence/)
    t.equal(await catalog.getPlacement(ref), 'a')
    t.equal(stores.a!.fences.size, 0, 'the source is not fenced')
    t.equal(stores.a!.messages(ref).length, 5)
    t.same(stores.b!.fences.get(`${ref.project}/${ref.queue}`)?.token, 'someone-else', 'a fence not ours is left alone')
    t.same(counts.outcomes, ['failed'])
  })

  t.test('a store that cannot migrate (it refuses with bad_request): failed at once, rolled back', async (t) => {
    const { catalog, stores, ref, runner, ended } = await setup(t, openCatalog)
    for (let i = 0; i < 5; i++) stores.a!.post(ref, `${i}`)
    stores.b!.hook = () => {
      throw new MissiveError('bad_request', 'This store does not support queue migration yet.')
    }
    const m = await catalog.createMigration({ ...ref, from: 'a', to: 'b', rate: 0, origin: 'admin' })
    runner()
    const end = await ended(m.id)
    t.equal(end.state, 'failed')
    t.match(end.error, /does not support queue migration/)
    t.equal(stores.a!.fences.size, 0, 'the source serves as before')
    t.equal(stores.a!.messages(ref).length, 5)
  })

  t.test('an unreachable target is retried with the error shown, then the move completes', async (t) => {
    const { catalog, stores, ref, runner, ended } = await setup(t, openCatalog)
    for (let i = 0; i < 12; i++) stores.a!.post(ref, `${i}`)
    let down = true
    stores.b!.hook = () => {
      if (down) throw unavailable('Pool b has no running worker.')
    }
    const m = await catalog.createMigration({ ...ref, from: 'a', to: 'b', rate: 0, origin: 'admin' })
    runner()
    const shown = await waitFor(async () => (await catalog.getMigration(m.id))!.error, { what: 'the error recorded' })
    t.match(shown, /no running worker/)
    down = false
    const end = await ended(m.id)
    t.equal(end.state, 'done')
    t.equal(end.error, null, 'cleared once it worked')
    t.equal(stores.b!.messages(ref).length, 12)
  })

  t.test('the queue deleted during the copy: the migration is cancelled and nothing is left on the target', async (t) => {
    const { catalog, stores, ref, runner, ended } = await setup(t, openCatalog)
    for (let i = 0; i < 300; i++) stores.a!.post(ref, `${i}`)
    const m = await catalog.createMigration({ ...ref, from: 'a', to: 'b', rate: 200, origin: 'admin' })
    runner()
    await waitFor(async () => (await catalog.getMigration(m.id))!.copied >= 10, { what: 'some copying' })
    // What the pooled driver does on DELETE /queues/q: the store deletes, the catalog forgets.
    stores.a!.purge(ref)
    await catalog.removePlacement(ref)
    t.equal((await ended(m.id)).state, 'cancelled')
    t.equal(stores.b!.queues.size, 0)
    t.equal(stores.b!.fences.size, 0)
    t.equal(stores.a!.fences.size, 0)
  })

  t.test('two runners share the work: each migration is run by one of them, all complete', async (t) => {
    const { catalog, stores, runner, ended } = await setup(t, openCatalog)
    const project = `p-${randomUUID()}`
    const ids: string[] = []
    for (let q = 0; q < 6; q++) {
      const ref = { project, queue: `q${q}` }
      await catalog.place(ref, 'a')
      for (let i = 0; i < 15; i++) stores.a!.post(ref, `${q}.${i}`)
      ids.push((await catalog.createMigration({ ...ref, from: 'a', to: 'b', rate: 1000, origin: 'drain:a' })).id)
    }
    // Leases long enough that no handover happens on a loaded machine: each runs in one runner.
    const r1 = runner({ owner: 'one', leaseMs: 5000 })
    const r2 = runner({ owner: 'two', leaseMs: 5000 })
    let together = 0
    const watch = setInterval(() => {
      for (const id of r1.running) if (r2.running.includes(id)) together++
    }, 1)
    for (const id of ids) t.equal((await ended(id)).state, 'done')
    clearInterval(watch)
    t.equal(together, 0, 'never one migration in both runners at once')
    for (let q = 0; q < 6; q++) t.equal(stores.b!.messages({ project, queue: `q${q}` }).length, 15)
  })
}

t.test('with a SQLite catalog', async (t) => {
  runnerSuite(t, async (t) => {
    const dir = await tempDir(t)
    const c = new SqliteCatalog(join(dir, 'catalog.sqlite'))
    t.teardown(() => c.close())
    return c
  })
})

t.test('with a Redis catalog', async (t) => {
  const server = await startRedis(t)
  runnerSuite(t, async (t) => {
    const c = await RedisCatalog.open({ host: '127.0.0.1', port: server.port, prefix: `t-${randomUUID()}:` })
    t.teardown(() => c.close())
    return c
  })
})
