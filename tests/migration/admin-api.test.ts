/**
 * The migration admin API (proxy/api/migrations.ts) on the in-process pool harness: admin token,
 * every bad input a clear 4xx that starts nothing, the shapes of create/get/list/cancel, drains
 * (refusing the last pool, topping up to `max_concurrent`), rebalance.
 */
import t, { type Test } from 'tap'
import { MigrationService } from '../../proxy/migration-control.js'
import { parseConfig } from '../../shared/config.js'
import { createLogger } from '../../shared/log.js'
import { startPoolHarness } from '../pools/harness.js'

const log = createLogger('test', 'silent')

async function setup(t: Test, opts: { pools?: { name: string; weight: number; flavor?: string | null; uri?: string }[] } = {}) {
  const h = await startPoolHarness(t)
  for (const p of opts.pools ?? [{ name: 'b', weight: 0 }]) {
    await h.catalog.putPool({ name: p.name, uri: p.uri ?? `sqlite:${p.name}.sqlite`, weight: p.weight, flavor: p.flavor ?? null, options: {} })
  }
  await h.pools.refresh()
  let kicks = 0
  h.pools.migrations = new MigrationService({
    catalog: h.catalog,
    pools: h.pools,
    getQueue: (ref) => h.storage.getQueue(ref),
    config: parseConfig({}).migration,
    log,
    kick: () => kicks++,
  })
  const none = async (what: string) => t.same(await h.catalog.listMigrations({ limit: 10 }), [], `${what}: nothing started`)
  return { h, none, kicks: () => kicks }
}

t.test('POST /v2/admin/migrations: 202 with the record and a Location; GET, list, cancel', async (t) => {
  const { h, kicks } = await setup(t)
  t.equal((await h.req('PUT', '/v2/queues/q1')).status, 201)
  t.equal((await h.req('POST', '/v2/admin/migrations', { body: { project: h.project, queue: 'q1', to_pool: 'b' }, admin: false })).status, 403, 'admin only')
  const r = await h.req('POST', '/v2/admin/migrations', { body: { project: h.project, queue: 'q1', to_pool: 'b', rate: 500 } })
  t.equal(r.status, 202)
  const id = r.json.id as string
  t.equal(r.headers.get('location'), `/v2/admin/migrations/${id}`)
  t.match(r.json, { project: h.project, queue: 'q1', from_pool: 'default', to_pool: 'b', state: 'copying', origin: 'admin', rate_limit: 500, messages_copied: 0, error: null, pause_ms: null })
  t.ok(kicks() > 0, 'the runner was asked to start')
  const got = await h.req('GET', `/v2/admin/migrations/${id}`)
  t.equal(got.status, 200)
  t.equal(got.json.id, id)
  t.equal((await h.req('GET', `/v2/admin/migrations/${id}`, { admin: false })).status, 403)
  const list = await h.req('GET', '/v2/admin/migrations?state=copying')
  t.same(
    list.json.migrations.map((m: { id: string }) => m.id),
    [id],
  )
  t.same((await h.req('GET', '/v2/admin/migrations?state=done')).json.migrations, [])
  const paged = await h.req('GET', '/v2/admin/migrations?limit=1')
  t.equal(paged.json.links.length, 1, 'a full page links to the next')
  t.same((await h.req('GET', paged.json.links[0].href)).json.migrations, [])

  // A second migration of the same queue: 409, nothing new.
  const again = await h.req('POST', '/v2/admin/migrations', { body: { project: h.project, queue: 'q1', to_pool: 'b' } })
  t.equal(again.status, 409)
  t.match(again.json.description, /already being migrated/)
  t.equal((await h.catalog.listMigrations({ limit: 10 })).length, 1)

  const c = await h.req('DELETE', `/v2/admin/migrations/${id}`)
  t.equal(c.status, 202)
  t.equal(c.json.state, 'cancelling')
  t.equal((await h.req('DELETE', `/v2/admin/migrations/${id}`)).status, 202, 'a repeated cancel is fine')
  t.equal((await h.req('DELETE', '/v2/admin/migrations/0000000000000000000000')).status, 404)
  t.equal((await h.req('GET', '/v2/admin/migrations/0000000000000000000000')).status, 404)
  t.equal((await h.req('GET', '/v2/admin/migrations/not-an-id')).status, 404)
})

t.test('bad input: each a clear 4xx JSON error, nothing started', async (t) => {
  const { h, none } = await setup(t, { pools: [{ name: 'b', weight: 1 }, { name: 'down', weight: 0, uri: 'redis://127.0.0.1:1' }] })
  await h.catalog.putPool({ name: 'default', uri: 'sqlite:', weight: 1, flavor: null, options: {} })
  t.equal((await h.req('PUT', '/v2/queues/q1')).status, 201)
  const placed = (await h.catalog.getPlacement({ project: h.project, queue: 'q1' }))!
  const other = placed === 'b' ? 'default' : 'b'
  const cases: [string, unknown, number, RegExp][] = [
    ['unknown queue', { project: h.project, queue: 'nope', to_pool: 'b' }, 404, /Queue nope does not exist/],
    ['unknown pool', { project: h.project, queue: 'q1', to_pool: 'nowhere' }, 400, /Pool nowhere does not exist/],
    ['target = source', { project: h.project, queue: 'q1', to_pool: placed }, 409, /already on pool/],
    ['target pool down', { project: h.project, queue: 'q1', to_pool: 'down' }, 409, /not reachable/],
    ['missing to_pool', { project: h.project, queue: 'q1' }, 400, /'to_pool' is a required property/],
    ['missing project', { queue: 'q1', to_pool: other }, 400, /'project' is a required property/],
    ['extra key', { project: h.project, queue: 'q1', to_pool: other, force: true }, 400, /Additional properties/],
    ['queue not a string', { project: h.project, queue: 5, to_pool: other }, 400, /not of type 'string'/],
    ['bad queue name', { project: h.project, queue: 'a b', to_pool: other }, 400, /not a valid queue name/],
    ['bad pool name', { project: h.project, queue: 'q1', to_pool: '../x' }, 400, /not a valid pool name/],
    ['empty project', { project: '', queue: 'q1', to_pool: other }, 400, /project/],
    ['negative rate', { project: h.project, queue: 'q1', to_pool: other, rate: -1 }, 400, /rate/],
    ['a body that is not an object', [1, 2], 400, /Document type not supported/],
  ]
  for (const [what, body, status, description] of cases) {
    const r = await h.req('POST', '/v2/admin/migrations', { body })
    t.equal(r.status, status, what)
    t.type(r.json?.title, 'string', `${what}: a JSON error`)
    t.match(r.json?.description, description, what)
  }
  const empty = await h.req('POST', '/v2/admin/migrations', { raw: '' })
  t.equal(empty.status, 400, 'an empty body')
  const bad = await h.req('POST', '/v2/admin/migrations', { raw: '{"project":' })
  t.equal(bad.status, 400, 'malformed JSON')
  await none('after every bad request')
  t.equal((await h.req('GET', '/v2/admin/migrations?state=bogus')).status, 400)
  t.equal((await h.req('GET', '/v2/admin/migrations?marker=x')).status, 400)
  t.equal((await h.req('GET', '/v2/admin/migrations?limit=0')).status, 400)
})

t.test('drain: refuses the last pool and a drain onto nothing; else weight 0 and queues start moving, at most max_concurrent at once', async (t) => {
  const { h, none } = await setup(t, { pools: [{ name: 'b', weight: 0 }] })
  for (let i = 0; i < 5; i++) t.equal((await h.req('PUT', `/v2/queues/d${i}`)).status, 201)
  const nothing = await h.req('POST', '/v2/admin/pools/default/drain')
  t.equal(nothing.status, 409, 'every other pool has weight 0: nowhere to go')
  t.match(nothing.json.description, /no other pool without a flavor has a weight above 0/)
  t.equal((await h.catalog.getPool('default'))!.weight, 1, 'nothing changed')
  t.equal((await h.req('POST', '/v2/admin/pools/nope/drain')).status, 404)
  t.equal((await h.req('POST', '/v2/admin/pools/default/drain', { admin: false })).status, 403)
  t.equal((await h.req('POST', '/v2/admin/pools/default/drain', { body: { max_concurrent: 0 } })).status, 400)
  t.equal((await h.req('POST', '/v2/admin/pools/default/drain', { body: { speed: 1 } })).status, 400)
  await none('refused drains')

  await h.catalog.putPool({ name: 'b', uri: 'sqlite:b.sqlite', weight: 1, flavor: null, options: {} })
  await h.pools.refresh()
  const r = await h.req('POST', '/v2/admin/pools/default/drain', { body: { max_concurrent: 2, rate: 1000 } })
  t.equal(r.status, 202)
  t.match(r.json, { pool: 'default', weight: 0, draining: true, max_concurrent: 2, rate_limit: 1000 })
  await h.pools.migrations!.drainTick()
  const started = await h.catalog.listMigrations({ limit: 10 })
  t.equal(started.length, 2, 'topped up to max_concurrent')
  t.ok(started.every((m) => m.from === 'default' && m.to === 'b' && m.origin === 'drain:default'))
  await h.pools.migrations!.drainTick()
  t.equal((await h.catalog.listMigrations({ limit: 10 })).length, 2, 'no more while two are active')
  const g = await h.req('GET', '/v2/admin/pools/default/drain')
  t.match(g.json, { draining: true, queues_left: 5, migrating: 2, done: false })
  t.equal((await h.req('DELETE', '/v2/admin/pools/default/drain')).status, 204)
  t.match((await h.req('GET', '/v2/admin/pools/default/drain')).json, { draining: false, weight: 0 })
})

t.test('drain: the last pool of a flavor is refused', async (t) => {
  const { h } = await setup(t, { pools: [{ name: 'g1', weight: 1, flavor: 'gold' }, { name: 'b', weight: 1 }] })
  const r = await h.req('POST', '/v2/admin/pools/g1/drain')
  t.equal(r.status, 409)
  t.match(r.json.description, /no other pool of flavor gold/)
})

t.test('rebalance: moves queues from pools over their share to those under it', async (t) => {
  const { h } = await setup(t, { pools: [{ name: 'b', weight: 0 }] })
  for (let i = 0; i < 6; i++) t.equal((await h.req('PUT', `/v2/queues/r${i}`)).status, 201)
  await h.catalog.putPool({ name: 'b', uri: 'sqlite:b.sqlite', weight: 1, flavor: null, options: {} })
  await h.pools.refresh()
  t.equal((await h.req('POST', '/v2/admin/rebalance', { body: { tolerance: 1.5 } })).status, 400)
  t.equal((await h.req('POST', '/v2/admin/rebalance', { body: { tolerance: 0.1 }, admin: false })).status, 403)
  const r = await h.req('POST', '/v2/admin/rebalance', { body: { tolerance: 0.1, max_concurrent: 2 } })
  t.equal(r.status, 202)
  t.equal(r.json.balanced, false)
  t.equal(r.json.started.length, 2, 'at most max_concurrent from the one source')
  t.ok(r.json.started.every((m: { from_pool: string; to_pool: string }) => m.from_pool === 'default' && m.to_pool === 'b'))
  t.match(
    r.json.pools.find((p: { name: string }) => p.name === 'default'),
    { queues: 6, share: 1, target: 0.5 },
  )
})

t.test('moveToFlavor (a PATCH of _flavor): a migration to a pool of that flavor, by weight', async (t) => {
  const { h } = await setup(t, { pools: [{ name: 'g1', weight: 1, flavor: 'gold' }, { name: 'g0', weight: 0, flavor: 'gold' }] })
  await h.catalog.putFlavor('gold', ['g0', 'g1'])
  await h.pools.refresh()
  t.equal((await h.req('PUT', '/v2/queues/f1')).status, 201)
  const ref = { project: h.project, queue: 'f1' }
  const m = await h.pools.migrations!.moveToFlavor(ref, 'gold')
  t.match(m, { from: 'default', to: 'g1', origin: 'flavor', state: 'copying' }, 'g0 has weight 0: never chosen')
  await t.rejects(h.pools.migrations!.moveToFlavor({ project: h.project, queue: 'f2' }, 'nope'), { code: 'bad_request' })
  await t.rejects(h.pools.migrations!.moveToFlavor(ref, 'gold'), { code: 'conflict' }, 'already moving')
})

t.test('drain top-ups racing in several proxies keep max_concurrent exact', async (t) => {
  const { h } = await setup(t, { pools: [{ name: 'b', weight: 1 }] })
  // Queues placed on default directly (the harness's random placement would spread them).
  for (let i = 0; i < 12; i++) await h.catalog.place({ project: h.project, queue: `r${i}` }, 'default')
  t.equal((await h.req('POST', '/v2/admin/pools/default/drain', { body: { max_concurrent: 3 } })).status, 202)
  const others = Array.from(
    { length: 3 },
    () => new MigrationService({ catalog: h.catalog, pools: h.pools, getQueue: (ref) => h.storage.getQueue(ref), config: parseConfig({}).migration, log }),
  )
  await Promise.all([h.pools.migrations!.drainTick(), ...others.map((o) => o.drainTick())])
  t.equal(await h.catalog.countActiveFrom('default'), 3)
  t.equal((await h.catalog.listMigrations({ limit: 50 })).length, 3, 'no more were created')
})

t.test('a whole drain, in process: every queue moves with its messages, at most max_concurrent at once', async (t) => {
  const { h } = await setup(t, { pools: [{ name: 'b', weight: 0 }] })
  const { MigrationRunner } = await import('../../proxy/migration-runner.js')
  const { reachThrough } = await import('../../proxy/migration-control.js')
  const n = 12
  for (let i = 0; i < n; i++) {
    t.equal((await h.req('PUT', `/v2/queues/w${i}`)).status, 201)
    const r = await h.req('POST', `/v2/queues/w${i}/messages`, { body: { messages: Array.from({ length: i + 1 }, (_, j) => ({ body: { i, j }, ttl: 600 })) } })
    t.equal(r.status, 201)
  }
  await h.catalog.putPool({ name: 'b', uri: 'sqlite:b.sqlite', weight: 1, flavor: null, options: {} })
  await h.pools.refresh()
  const runner = new MigrationRunner({ catalog: h.catalog, reach: reachThrough(h.pools), log, leaseMs: 2000, pollMs: 20, maxRunning: 4 })
  runner.start()
  t.teardown(() => runner.stop())
  t.equal((await h.req('POST', '/v2/admin/pools/default/drain', { body: { max_concurrent: 3 } })).status, 202)
  const { waitFor } = await import('../helpers/index.js')
  let peak = 0
  await waitFor(
    async () => {
      await h.pools.migrations!.drainTick()
      peak = Math.max(peak, await h.catalog.countActiveFrom('default'))
      return (await h.req('GET', '/v2/admin/pools/default/drain')).json.done === true
    },
    { timeoutMs: 60_000, intervalMs: 20, what: 'the drain to finish' },
  )
  t.ok(peak <= 3, `never more than max_concurrent at once (peak ${peak})`)
  t.equal(await h.catalog.countPlacements('default'), 0)
  t.equal(await h.catalog.countPlacements('b'), n)
  for (let i = 0; i < n; i++) {
    const stats = await h.req('GET', `/v2/queues/w${i}/stats`)
    t.equal(stats.json.messages.total, i + 1, `w${i} kept its messages`)
  }
  const done = await h.catalog.listMigrations({ limit: 50, state: 'done' })
  t.equal(done.length, n)
  t.ok(done.every((m) => m.origin === 'drain:default'))
})

t.test('drain: a queue whose move failed during the drain is not retried every tick', async (t) => {
  const { h } = await setup(t, { pools: [{ name: 'b', weight: 1 }] })
  await h.catalog.place({ project: h.project, queue: 'x1' }, 'default')
  t.equal((await h.req('POST', '/v2/admin/pools/default/drain', { body: { max_concurrent: 2 } })).status, 202)
  await h.pools.migrations!.drainTick()
  const [m] = await h.catalog.listMigrations({ limit: 10 })
  t.ok(m)
  // The runner gave up on it (rolled back, failed).
  await h.catalog.acquireMigration('r', 60_000)
  await h.catalog.updateMigration(m!.id, 'r', { state: 'cancelling', error: 'store refused' })
  await h.catalog.updateMigration(m!.id, 'r', { state: 'failed' })
  await h.pools.migrations!.drainTick()
  await h.pools.migrations!.drainTick()
  t.equal((await h.catalog.listMigrations({ limit: 10 })).length, 1, 'no new migration of the failed queue')
  // A new drain request (a new start time) tries it again.
  await h.req('DELETE', '/v2/admin/pools/default/drain')
  t.equal((await h.req('POST', '/v2/admin/pools/default/drain', { body: { max_concurrent: 2 } })).status, 202)
  await h.pools.migrations!.drainTick()
  t.equal((await h.catalog.listMigrations({ limit: 10 })).length, 2, 'retried once the drain is asked for again')
})

t.test('a drain starts its next migration as soon as one ends, not at the next poll tick', async (t) => {
  const { h } = await setup(t, { pools: [{ name: 'b', weight: 0 }] })
  const { MigrationRunner } = await import('../../proxy/migration-runner.js')
  const { reachThrough } = await import('../../proxy/migration-control.js')
  const { waitFor } = await import('../helpers/index.js')
  const n = 10
  for (let i = 0; i < n; i++) {
    const r = await h.req('POST', `/v2/queues/p${i}/messages`, { body: { messages: [{ body: { i }, ttl: 600 }] } })
    t.equal(r.status, 201)
  }
  await h.catalog.putPool({ name: 'b', uri: 'sqlite:b.sqlite', weight: 1, flavor: null, options: {} })
  await h.pools.refresh()
  // pollMs 0: no poll timer at all, and no drain timer (the test never calls drainTick): the
  // drain request's own top-up starts the first two; only the runner's end-of-migration hook
  // can start the rest.
  let service: MigrationService | undefined
  const runner = new MigrationRunner({
    catalog: h.catalog,
    reach: reachThrough(h.pools),
    log,
    leaseMs: 2000,
    pollMs: 0,
    maxRunning: 4,
    onEnded: (m) => service!.migrationEnded(m),
  })
  service = new MigrationService({ catalog: h.catalog, pools: h.pools, getQueue: (ref) => h.storage.getQueue(ref), config: parseConfig({}).migration, log, kick: () => void runner.kick() })
  h.pools.migrations = service
  runner.start()
  t.teardown(() => runner.stop())
  t.equal((await h.req('POST', '/v2/admin/pools/default/drain', { body: { max_concurrent: 2 } })).status, 202)
  let peak = 0
  await waitFor(
    async () => {
      peak = Math.max(peak, await h.catalog.countActiveFrom('default'))
      return (await h.req('GET', '/v2/admin/pools/default/drain')).json.done === true
    },
    { timeoutMs: 30_000, intervalMs: 10, what: 'the drain to finish with no poll tick' },
  )
  t.ok(peak <= 2, `never more than max_concurrent at once (peak ${peak})`)
  t.equal(await h.catalog.countPlacements('default'), 0)
  t.equal(await h.catalog.countPlacements('b'), n)
  const done = await h.catalog.listMigrations({ limit: 50, state: 'done' })
  t.equal(done.length, n, 'every queue moved')
  for (let i = 0; i < n; i++) t.equal((await h.req('GET', `/v2/queues/p${i}/stats`)).json.messages.total, 1, `p${i} kept its message`)
})
