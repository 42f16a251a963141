/**
 * The catalog contract suite: what every `CatalogStore` must do (catalog/contract.ts). Each store
 * gets a test file that calls `catalogContract` with a factory; `open()` returns a store on the
 * same shared backing (file, server) every time it is called within one test.
 */
import { randomUUID } from 'node:crypto'
import type { Test } from 'tap'
import { REMOVALS_KEPT, type CatalogStore, type NewMigration, type Pool } from '../../catalog/contract.js'
import { isMigrationId } from '../../catalog/migration-record.js'
import { waitFor } from '../helpers/index.js'

export interface CatalogFactory {
  /** A fresh, empty backing for one test; `open()` may be called several times on it. */
  (t: Test): Promise<{ open(): Promise<CatalogStore> }>
}

const pool = (name: string, extra: Partial<Pool> = {}): Pool => ({
  name,
  uri: `sqlite:${name}.sqlite`,
  weight: 1,
  flavor: null,
  options: {},
  ...extra,
})

/** What a refused migration write rejects with (a `MigrationError`). */
const refused = (reason: string, extra: Record<string, unknown> = {}) => ({ code: reason === 'not_found' ? 'not_found' : 'conflict', reason, ...extra })

export function catalogContract(t: Test, factory: CatalogFactory): void {
  const setup = async (t: Test) => {
    const backing = await factory(t)
    const opened: CatalogStore[] = []
    const open = async (): Promise<CatalogStore> => {
      const s = await backing.open()
      opened.push(s)
      return s
    }
    t.teardown(async () => {
      for (const s of opened) await s.close()
    })
    return { store: await open(), open }
  }
  const project = (): string => `p-${randomUUID()}`

  t.test('placement is insert-if-absent', async (t) => {
    const { store } = await setup(t)
    const ref = { project: project(), queue: 'q' }
    t.equal(await store.getPlacement(ref), null)
    t.equal(await store.place(ref, 'a'), 'a', 'first writer wins')
    t.equal(await store.place(ref, 'b'), 'a', 'later writers learn the existing pool')
    t.equal(await store.getPlacement(ref), 'a')
    t.equal(await store.getPlacement({ project: ref.project, queue: 'other' }), null)
    t.equal(await store.getPlacement({ project: project(), queue: 'q' }), null, 'placements are per project')
    await store.removePlacement(ref)
    t.equal(await store.getPlacement(ref), null)
    await t.resolves(store.removePlacement(ref), 'removing a missing placement is a no-op')
    t.equal(await store.place(ref, 'b'), 'b', 'a removed placement can be made again')
  })

  t.test('racing places agree on one pool', async (t) => {
    const { store, open } = await setup(t)
    const other = await open()
    const p = project()
    const queues = Array.from({ length: 50 }, (_, i) => `q${i}`)
    const results = await Promise.all(
      queues.flatMap((queue) => [
        store.place({ project: p, queue }, 'a'),
        other.place({ project: p, queue }, 'b'),
        store.place({ project: p, queue }, 'c'),
      ]),
    )
    for (let i = 0; i < queues.length; i++) {
      const got = results.slice(i * 3, i * 3 + 3)
      const final = await other.getPlacement({ project: p, queue: queues[i] })
      t.ok(final !== null && got.every((g) => g === final), `${queues[i]}: every racer got ${final}`)
    }
  })

  t.test('placeWithin: a quota of queues per project, counted over every pool', async (t) => {
    const { store } = await setup(t)
    for (const name of ['a', 'b']) await store.putPool({ name, uri: `sqlite:${name}.sqlite`, weight: 1, flavor: null, options: {} })
    const p = project()
    const ref = (queue: string, proj = p) => ({ project: proj, queue })
    t.equal(await store.placeWithin(ref('q1'), 'a', 2), 'a')
    t.equal(await store.placeWithin(ref('q2'), 'b', 2), 'b', 'a queue on another pool')
    t.equal(await store.placeWithin(ref('q3'), 'a', 2), null, 'the third queue: over the quota of 2 (queues on both pools count)')
    t.equal(await store.getPlacement(ref('q3')), null, 'nothing written')
    t.equal(await store.placeWithin(ref('q1'), 'b', 2), 'a', 'a placed queue is answered at the quota too')
    t.equal(await store.placeWithin(ref('q1', `${p}2`), 'a', 1), 'a', 'a project whose name extends this one has its own count')
    t.equal(await store.placeWithin(ref('q1', p.slice(0, -1)), 'a', 1), 'a', 'and so has a project whose name this one extends')
    await store.removePlacement(ref('q2'))
    t.equal(await store.placeWithin(ref('q3'), 'a', 2), 'a', 'a removed placement makes room')
    t.equal(await store.place(ref('q4'), 'b'), 'b', 'place itself ignores quotas')
    t.equal(await store.placeWithin(ref('q5'), 'b', 3), null, 'and what it placed counts')
  })

  t.test('racing placeWithin never overshoots the quota', async (t) => {
    const { store, open } = await setup(t)
    const other = await open()
    await store.putPool({ name: 'a', uri: 'sqlite:a.sqlite', weight: 1, flavor: null, options: {} })
    const p = project()
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? store : other).placeWithin({ project: p, queue: `q${i}` }, 'a', 7)))
    t.equal(results.filter((r) => r === 'a').length, 7, 'exactly the quota placed')
    t.equal(results.filter((r) => r === null).length, 23)
  })

  t.test('queue and project names are taken literally', async (t) => {
    const { store } = await setup(t)
    const odd = { project: "p'; DROP TABLE placements; --", queue: 'q_%' }
    t.equal(await store.place(odd, 'a'), 'a')
    t.equal(await store.getPlacement({ project: odd.project, queue: 'qx%' }), null)
    t.equal(await store.getPlacement(odd), 'a')
  })

  t.test('pools CRUD', async (t) => {
    const { store } = await setup(t)
    t.equal(await store.getPool('nope'), null)
    const a = pool('a', { weight: 10, flavor: 'gold', options: { durable: true, nested: { x: [1, 2] } } })
    await store.putPool(pool('b'))
    await store.putPool(a)
    t.same(await store.getPool('a'), a)
    t.same(
      (await store.listPools()).map((p) => p.name),
      ['a', 'b'],
      'sorted by name',
    )
    const a2 = { ...a, uri: 'redis://x', weight: 0, flavor: null, options: {} }
    await store.putPool(a2)
    t.same(await store.getPool('a'), a2, 'put replaces')
    await store.deletePool('b')
    t.equal(await store.getPool('b'), null)
    await t.resolves(store.deletePool('b'), 'deleting a missing pool is a no-op')
    t.same(await store.listPools(), [a2])
  })

  t.test('a pool holding queues cannot be deleted', async (t) => {
    const { store } = await setup(t)
    await store.putPool(pool('busy'))
    const ref = { project: project(), queue: 'q' }
    await store.place(ref, 'busy')
    await t.rejects(store.deletePool('busy'), { code: 'conflict', status: 409 })
    t.ok(await store.getPool('busy'), 'still there')
    await store.removePlacement(ref)
    await store.deletePool('busy')
    t.equal(await store.getPool('busy'), null, 'deletable once empty')
  })

  t.test('placements are counted and listed per pool, in (project, queue) byte order', async (t) => {
    const { store } = await setup(t)
    t.equal(await store.countPlacements('a'), 0)
    t.same(await store.listPlacements('a', { limit: 10 }), [])
    const refs = [
      { project: 'p1', queue: 'b' },
      { project: 'p1', queue: 'a' },
      { project: 'p', queue: 'z' },
      { project: 'p2', queue: 'a' },
      { project: 'p1', queue: 'a.b' },
    ]
    for (const r of refs) await store.place(r, 'a')
    await store.place({ project: 'p1', queue: 'c' }, 'b')
    t.equal(await store.countPlacements('a'), 5)
    t.equal(await store.countPlacements('b'), 1)
    const sorted = [
      { project: 'p', queue: 'z' },
      { project: 'p1', queue: 'a' },
      { project: 'p1', queue: 'a.b' },
      { project: 'p1', queue: 'b' },
      { project: 'p2', queue: 'a' },
    ]
    t.same(await store.listPlacements('a', { limit: 10 }), sorted)
    t.same(await store.listPlacements('a', { limit: 2 }), sorted.slice(0, 2))
    t.same(await store.listPlacements('a', { limit: 2, after: sorted[1] }), sorted.slice(2, 4))
    t.same(await store.listPlacements('a', { limit: 10, after: sorted[4] }), [])
    await store.removePlacement(sorted[0]!)
    t.equal(await store.countPlacements('a'), 4)
    t.same(await store.listPlacements('a', { limit: 1 }), [sorted[1]])
  })

  t.test('flavors: a name plus the pools that carry it', async (t) => {
    const { store, open } = await setup(t)
    const other = await open()
    t.equal(await store.getFlavor('gold'), null)
    t.same(await store.listFlavors(), [])
    for (const n of ['a', 'b', 'c']) await store.putPool(pool(n))
    await store.putFlavor('gold', ['b', 'a'])
    t.same(await other.getFlavor('gold'), { name: 'gold', pools: ['a', 'b'] }, 'pools sorted by name')
    t.equal((await other.getPool('a'))!.flavor, 'gold', 'the pools carry the flavor')
    t.equal((await other.getPool('c'))!.flavor, null)
    await store.putFlavor('gold', ['c'])
    t.same(await store.getFlavor('gold'), { name: 'gold', pools: ['c'] }, 'put replaces the pool list')
    t.equal((await store.getPool('a'))!.flavor, null, 'dropped pools lose the flavor')
    await t.rejects(store.putFlavor('gold', ['a', 'nope']), { code: 'not_found', status: 404, description: 'Pool nope does not exist' })
    t.same(await store.getFlavor('gold'), { name: 'gold', pools: ['c'] }, 'a failed put changes nothing')
    await t.rejects(store.putFlavor('silver', ['nope']), { code: 'not_found' })
    t.equal(await store.getFlavor('silver'), null, 'nor creates the flavor')
    await store.putFlavor('bronze', ['a'])
    t.same(await other.listFlavors(), [
      { name: 'bronze', pools: ['a'] },
      { name: 'gold', pools: ['c'] },
    ])
    await store.putPool(pool('d', { flavor: 'gold' }))
    t.same((await store.getFlavor('gold'))!.pools, ['c', 'd'], 'a pool put with the flavor joins it')
    await store.putFlavor('empty', [])
    t.same(await store.getFlavor('empty'), { name: 'empty', pools: [] }, 'a flavor may have no pool')
    await store.deleteFlavor('gold')
    t.equal(await other.getFlavor('gold'), null)
    t.equal((await store.getPool('c'))!.flavor, null, 'deleting a flavor clears it on its pools')
    t.equal((await store.getPool('d'))!.flavor, null)
    await t.resolves(store.deleteFlavor('gold'), 'deleting a missing flavor is a no-op')
    t.same(
      (await store.listFlavors()).map((f) => f.name),
      ['bronze', 'empty'],
    )
  })

  t.test('version changes on every change that can stale a cache, as seen from another instance', async (t) => {
    const { store, open } = await setup(t)
    const watcher = await open()
    let v = await watcher.version()
    t.type(v, 'number')
    const changed = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      await fn()
      const now = await watcher.version()
      t.not(now, v, `${what} changes the version`)
      v = now
    }
    const unchanged = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      await fn()
      t.equal(await watcher.version(), v, `${what} leaves the version`)
    }
    const ref = { project: project(), queue: 'q' }
    await changed('putPool', () => store.putPool(pool('v')))
    await changed('putPool again (update)', () => store.putPool(pool('v', { weight: 3 })))
    await unchanged('a new placement (stales no cached entry)', () => store.place(ref, 'v'))
    await unchanged('a place that finds a placement', () => store.place(ref, 'w'))
    await unchanged('reads', async () => {
      await store.getPlacement(ref)
      await store.listPools()
      await store.getPool('v')
    })
    await changed('putFlavor', () => store.putFlavor('f', ['v']))
    await changed('putFlavor again', () => store.putFlavor('f', []))
    await changed('deleteFlavor', () => store.deleteFlavor('f'))
    await unchanged('counts and listings', async () => {
      await store.countPlacements('v')
      await store.listPlacements('v', { limit: 5 })
      await store.listFlavors()
      await store.getFlavor('f')
    })
    await changed('removePlacement', () => store.removePlacement(ref))
    await changed('deletePool', () => store.deletePool('v'))
    t.ok((await store.version()) === v, 'both instances agree')
  })

  t.test('removalsSince: each placement removal with the version it made, as seen from another instance', async (t) => {
    const { store, open } = await setup(t)
    const watcher = await open()
    const p = project()
    const a = { project: p, queue: 'a' }
    const b = { project: p, queue: 'b.x' }
    await store.putPool(pool('r'))
    const start = await watcher.version()
    t.same(await watcher.removalsSince(start), [], 'nothing removed yet')
    await store.place(a, 'r')
    await store.place(b, 'r')
    await store.removePlacement(a)
    await store.removePlacement({ project: p, queue: 'never-placed' })
    t.equal(await watcher.version(), start + 1, 'the version grows by one per change')
    await store.putFlavor('g', ['r'])
    await store.removePlacement(b)
    t.equal(await watcher.version(), start + 3)
    t.same(
      await watcher.removalsSince(start),
      [
        { version: start + 1, ref: a },
        { version: start + 3, ref: b },
      ],
      'removals in order with their versions; the flavor change (start + 2) is not one',
    )
    t.same(await watcher.removalsSince(start + 1), [{ version: start + 3, ref: b }], 'strictly after `after`')
    t.same(await watcher.removalsSince(start + 3), [])
  })

  t.test(`removalsSince remembers at least the last ${REMOVALS_KEPT} removals`, async (t) => {
    const { store } = await setup(t)
    await store.putPool(pool('k'))
    const p = project()
    const start = await store.version()
    const n = REMOVALS_KEPT + 5
    for (let i = 0; i < n; i++) {
      const ref = { project: p, queue: `q${i}` }
      await store.place(ref, 'k')
      await store.removePlacement(ref)
    }
    const kept = await store.removalsSince(start)
    t.ok(kept.length >= REMOVALS_KEPT && kept.length <= n, `kept ${kept.length}`)
    t.same(kept[kept.length - 1], { version: start + n, ref: { project: p, queue: `q${n - 1}` } }, 'the latest is kept')
    t.same(
      kept.map((r) => r.version),
      Array.from({ length: kept.length }, (_, i) => start + n - kept.length + 1 + i),
      'a contiguous run of the latest versions',
    )
  })

  // ---- live migrations (catalog/migration-record.ts) ----

  /** Pools a and b, and a queue placed on a. */
  const migrationSetup = async (t: Test) => {
    const s = await setup(t)
    await s.store.putPool(pool('a'))
    await s.store.putPool(pool('b'))
    const ref = { project: project(), queue: 'q' }
    await s.store.place(ref, 'a')
    const m: NewMigration = { ...ref, from: 'a', to: 'b', rate: 100, origin: 'admin' }
    return { ...s, ref, m }
  }

  t.test('createMigration: a copying record, creation-ordered ids; every refusal changes nothing', async (t) => {
    const { store, open, ref, m } = await migrationSetup(t)
    const other = await open()
    const none = async () => t.same(await other.listMigrations({ limit: 10 }), [], 'nothing was created')
    await t.rejects(store.createMigration({ ...m, to: 'a' }), refused('same_pool', { status: 409 }))
    await t.rejects(store.createMigration({ ...m, to: 'nope' }), refused('unknown_pool', { description: 'Pool nope does not exist' }))
    await t.rejects(store.createMigration({ ...m, from: 'b', to: 'a' }), refused('not_placed', { status: 409 }))
    await t.rejects(store.createMigration({ ...m, queue: 'unplaced' }), refused('not_placed'))
    await none()
    const got = await store.createMigration(m)
    t.ok(isMigrationId(got.id), `id ${got.id}`)
    t.match(got, { ...m, state: 'copying', cursor: 0, copied: 0, bytes: 0, journalApplied: 0, sourceCount: null, error: null, started: null })
    t.match(got, { switchedAt: null, finished: null, pauseMs: null, leaseOwner: null, leaseExpires: 0 })
    t.type(got.created, 'number')
    t.same(await other.getMigration(got.id), got, 'visible to another instance')
    t.same(await other.activeMigration(ref), got)
    t.equal(await other.activeMigration({ ...ref, queue: 'other' }), null)
    await t.rejects(other.createMigration({ ...m, to: 'b' }), refused('active', { migration: got.id, status: 409 }), 'one active migration per queue')
    t.equal((await store.listMigrations({ limit: 10 })).length, 1)
    t.equal(await store.getMigration('0000000000000000000000'), null)

    // The concurrency guard counts active migrations leaving a pool.
    const ref2 = { project: ref.project, queue: 'q2' }
    await store.place(ref2, 'a')
    t.equal(await store.countActiveFrom('a'), 1)
    t.equal(await store.countActiveFrom('b'), 0)
    await t.rejects(store.createMigration({ ...m, ...ref2 }, { maxActiveFrom: 1 }), refused('busy'))
    const second = await store.createMigration({ ...m, ...ref2 }, { maxActiveFrom: 2 })
    t.ok(second.id > got.id, 'ids sort by creation')
    t.equal(await other.countActiveFrom('a'), 2)
  })

  t.test('racing creates of one queue: exactly one wins', async (t) => {
    const { store, open, m } = await migrationSetup(t)
    const other = await open()
    const results = await Promise.allSettled([store, other, store, other].map((s) => s.createMigration(m)))
    t.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
    t.equal((await store.listMigrations({ limit: 10 })).length, 1)
  })

  t.test('listMigrations: paged in creation order, by state', async (t) => {
    const { store, m } = await migrationSetup(t)
    const ids: string[] = []
    for (let i = 0; i < 5; i++) {
      const ref = { project: m.project, queue: `l${i}` }
      await store.place(ref, 'a')
      ids.push((await store.createMigration({ ...m, ...ref })).id)
    }
    t.same((await store.listMigrations({ limit: 10 })).map((x) => x.id), ids)
    t.same((await store.listMigrations({ limit: 2 })).map((x) => x.id), ids.slice(0, 2))
    t.same((await store.listMigrations({ limit: 2, after: ids[1] })).map((x) => x.id), ids.slice(2, 4))
    await store.cancelMigration(ids[3]!)
    t.same((await store.listMigrations({ limit: 10, state: 'cancelling' })).map((x) => x.id), [ids[3]])
    t.same((await store.listMigrations({ limit: 10, state: 'copying' })).map((x) => x.id), [ids[0], ids[1], ids[2], ids[4]])
    t.same((await store.listMigrations({ limit: 1, state: 'copying', after: ids[2] })).map((x) => x.id), [ids[4]])
    t.same(await store.listMigrations({ limit: 10, state: 'done' }), [])
  })

  t.test('leases: one holder at a time, renewed, released, taken over when expired', async (t) => {
    const { store, open, m } = await migrationSetup(t)
    const other = await open()
    t.equal(await store.acquireMigration('r1', 60_000), null, 'nothing to run')
    const mig = await store.createMigration(m)
    const got = await store.acquireMigration('r1', 60_000)
    t.equal(got?.id, mig.id)
    t.equal(got?.leaseOwner, 'r1')
    t.ok(got!.leaseExpires > 0)
    t.equal(await other.acquireMigration('r2', 60_000), null, 'held by r1')
    t.equal((await store.acquireMigration('r1', 60_000))?.id, mig.id, 'the holder may take it again')
    t.equal(await store.acquireMigration('r1', 60_000, [mig.id]), null, 'skipped')
    await store.renewMigration(mig.id, 'r1', 60_000)
    await t.rejects(other.renewMigration(mig.id, 'r2', 60_000), refused('lease_lost'))
    await t.rejects(other.renewMigration('0000000000000000000000', 'r2', 1), refused('not_found', { status: 404 }))
    await other.releaseMigration(mig.id, 'r2')
    t.equal(await other.acquireMigration('r2', 60_000), null, 'a release by a non-holder does nothing')
    await store.releaseMigration(mig.id, 'r1')
    t.equal((await other.acquireMigration('r2', 1))?.leaseOwner, 'r2', 'released: another runner takes it')
    // r2's lease lasts 1 ms: r1 takes over once it has expired (the store's clock).
    const taken = await waitFor(() => store.acquireMigration('r1', 60_000), { what: "r2's lease expiring" })
    t.equal(taken!.leaseOwner, 'r1')
    await t.rejects(other.updateMigration(mig.id, 'r2', { cursor: 5 }), refused('lease_lost'), 'the old holder can no longer write')
    t.equal((await store.getMigration(mig.id))!.cursor, 0)
  })

  t.test('updateMigration: under the lease, checked transitions; an ended migration frees the queue', async (t) => {
    const { store, ref, m } = await migrationSetup(t)
    const mig = await store.createMigration(m)
    await t.rejects(store.updateMigration(mig.id, 'r1', { cursor: 1 }), refused('lease_lost'), 'no lease, no write')
    await store.acquireMigration('r1', 60_000)
    let u = await store.updateMigration(mig.id, 'r1', { cursor: 42, copied: 40, bytes: 4000, journalApplied: 3, sourceCount: 50, started: 1000, error: 'x' })
    t.match(u, { state: 'copying', cursor: 42, copied: 40, bytes: 4000, journalApplied: 3, sourceCount: 50, started: 1000, error: 'x' })
    u = await store.updateMigration(mig.id, 'r1', { error: null })
    t.equal(u.error, null, 'null clears a field')
    t.equal(u.cursor, 42, 'other fields kept')
    await t.rejects(store.updateMigration(mig.id, 'r1', { state: 'cleaning' }), refused('bad_transition'), 'cleaning comes from finishSwitch only')
    await t.rejects(store.updateMigration(mig.id, 'r1', { state: 'done' }), refused('bad_transition'))
    u = await store.updateMigration(mig.id, 'r1', { state: 'switching', switchedAt: 2000 })
    t.match(u, { state: 'switching', switchedAt: 2000 })
    await t.rejects(store.updateMigration(mig.id, 'r1', { state: 'copying' }), refused('bad_transition'), 'no way back from the switch')
    await t.rejects(store.updateMigration(mig.id, 'r1', { state: 'cancelling' }), refused('bad_transition'))
    await t.rejects(store.cancelMigration(mig.id), refused('too_late', { status: 409 }))
    t.equal((await store.getMigration(mig.id))!.state, 'switching')
    await t.rejects(store.updateMigration('0000000000000000000000', 'r1', {}), refused('not_found', { status: 404 }))
    t.equal((await store.activeMigration(ref))?.id, mig.id)
  })

  t.test('finishSwitch: placement, state and a removal entry in one write; repeatable', async (t) => {
    const { store, open, ref, m } = await migrationSetup(t)
    const watcher = await open()
    const mig = await store.createMigration(m)
    await store.acquireMigration('r1', 60_000)
    await t.rejects(store.finishSwitch(mig.id, 'r1'), refused('bad_transition'), 'only from switching')
    await store.updateMigration(mig.id, 'r1', { state: 'switching', switchedAt: 5 })
    await t.rejects(store.finishSwitch(mig.id, 'r2'), refused('lease_lost'))
    t.equal(await watcher.getPlacement(ref), 'a', 'nothing moved yet')
    const v0 = await watcher.version()
    const done = await store.finishSwitch(mig.id, 'r1', { pauseMs: 12.5 })
    t.match(done, { state: 'cleaning', pauseMs: 12.5, switchedAt: 5 })
    t.equal(await watcher.getPlacement(ref), 'b', 'the placement moved')
    t.equal(await watcher.version(), v0 + 1, 'one version')
    t.same(await watcher.removalsSince(v0), [{ version: v0 + 1, ref }], 'proxies forget just this queue')
    t.equal(await watcher.countPlacements('a'), 0)
    t.same(await watcher.listPlacements('b', { limit: 10 }), [ref])
    t.same(await store.finishSwitch(mig.id, 'r1', { pauseMs: 99 }), done, 'a repeat (crash after the switch) changes nothing')
    t.equal(await watcher.version(), v0 + 1)
    t.equal((await watcher.activeMigration(ref))?.state, 'cleaning', 'still active while the source is cleaned')
    const end = await store.updateMigration(mig.id, 'r1', { state: 'done', finished: 7 })
    t.match(end, { state: 'done', finished: 7, leaseOwner: null })
    t.equal(await watcher.activeMigration(ref), null, 'done: the queue is free')
    t.equal(await watcher.acquireMigration('r2', 60_000), null, 'nothing left to run')
    await t.rejects(store.cancelMigration(mig.id), refused('too_late'))
    const back = await store.createMigration({ ...m, from: 'b', to: 'a' })
    t.equal(back.state, 'copying', 'and may move back')
  })

  t.test('cancelMigration and removePlacement roll a copy back through cancelling', async (t) => {
    const { store, ref, m } = await migrationSetup(t)
    await t.rejects(store.cancelMigration('0000000000000000000000'), refused('not_found', { status: 404 }))
    const mig = await store.createMigration(m)
    await store.acquireMigration('r0', 60_000)
    await store.updateMigration(mig.id, 'r0', { error: 'a retried error' })
    await store.releaseMigration(mig.id, 'r0')
    const c = await store.cancelMigration(mig.id)
    t.equal(c.state, 'cancelling')
    t.equal(c.error, null, 'an operator cancel is not a failure')
    t.same(await store.cancelMigration(mig.id), c, 'a repeated cancel changes nothing')
    t.equal((await store.activeMigration(ref))?.state, 'cancelling', 'active until the runner rolled back')
    t.equal((await store.acquireMigration('r1', 60_000))?.id, mig.id, 'a runner takes the rollback')
    await t.rejects(store.updateMigration(mig.id, 'r1', { state: 'switching' }), refused('bad_transition'), 'a cancelled copy never switches')
    t.equal((await store.updateMigration(mig.id, 'r1', { state: 'cancelled', finished: 1 })).state, 'cancelled')
    t.equal((await store.cancelMigration(mig.id)).state, 'cancelled')
    t.equal(await store.activeMigration(ref), null)
    t.equal(await store.countActiveFrom('a'), 0)

    const again = await store.createMigration(m)
    await store.acquireMigration('r0', 60_000)
    await store.updateMigration(again.id, 'r0', { error: 'a retried error' })
    await store.releaseMigration(again.id, 'r0')
    await store.removePlacement(ref)
    t.equal((await store.getMigration(again.id))!.error, null)
    t.equal((await store.getMigration(again.id))!.state, 'cancelling', 'the queue was deleted: the copy rolls back')
    await store.acquireMigration('r1', 60_000)
    t.equal((await store.updateMigration(again.id, 'r1', { state: 'failed', error: 'gone', finished: 2 })).state, 'failed')
    t.equal(await store.activeMigration(ref), null)
  })

  t.test('lastMigration: the latest of the queue, active or ended', async (t) => {
    const { store, open, ref, m } = await migrationSetup(t)
    const other = await open()
    t.equal(await store.lastMigration(ref), null, 'never migrated')
    const first = await store.createMigration(m)
    t.equal((await other.lastMigration(ref))?.id, first.id)
    await store.cancelMigration(first.id)
    await store.acquireMigration('r', 60_000)
    await store.updateMigration(first.id, 'r', { state: 'failed', error: 'x' })
    t.equal((await other.lastMigration(ref))?.state, 'failed', 'ended ones too')
    const second = await store.createMigration(m)
    t.equal((await other.lastMigration(ref))?.id, second.id, 'the newest')
    t.equal(await other.lastMigration({ ...ref, queue: 'other' }), null)
  })

  t.test('a pool a migration is moving a queue onto cannot be deleted', async (t) => {
    const { store, m } = await migrationSetup(t)
    const mig = await store.createMigration(m)
    await t.rejects(store.deletePool('b'), { code: 'conflict' })
    t.ok(await store.getPool('b'))
    await store.cancelMigration(mig.id)
    await store.acquireMigration('r', 60_000)
    await store.updateMigration(mig.id, 'r', { state: 'cancelled' })
    await store.deletePool('b')
    t.equal(await store.getPool('b'), null)
  })
}
