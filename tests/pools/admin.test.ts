/**
 * The pools and flavors admin API (docs/pools.md; zaqar/transport/wsgi/v2_0/pools.py, flavors.py) through HTTP, in process: authorisation, every
 * error case, pagination, capabilities; and how `_flavor`, weights and listings behave with
 * several pools.
 */
import t from 'tap'
import { seededRandom } from '../../catalog/placement.js'
import { startRedis } from '../helpers/index.js'
import { ADMIN_TOKEN, startPoolHarness } from './harness.js'

const FORBIDDEN = { title: 'Not authorized', description: 'You are not authorized to complete this action.' }

const ADMIN_CALLS: [string, string, unknown?][] = [
  ['GET', '/v2/pools'],
  ['PUT', '/v2/pools/p1', { weight: 1, uri: 'sqlite:p1.sqlite' }],
  ['GET', '/v2/pools/default'],
  ['PATCH', '/v2/pools/default', { weight: 2 }],
  ['DELETE', '/v2/pools/default'],
  ['GET', '/v2/flavors'],
  ['PUT', '/v2/flavors/f', { pool_list: ['default'] }],
  ['GET', '/v2/flavors/f'],
  ['PATCH', '/v2/flavors/f', { pool_list: ['default'] }],
  ['DELETE', '/v2/flavors/f'],
  ['GET', '/v2/admin/pools/default/stats'],
]

t.test('admin calls need the admin token; X-Roles is never trusted', async (t) => {
  const h = await startPoolHarness(t)
  for (const [method, path, body] of ADMIN_CALLS) {
    const none = await h.req(method, path, { body, admin: false })
    t.equal(none.status, 403, `${method} ${path} without a token`)
    t.same(none.json, FORBIDDEN)
    const forged = await h.req(method, path, { body, admin: false, headers: { 'X-Roles': 'admin', 'X-Auth-Token': 'guess' } })
    t.equal(forged.status, 403, `${method} ${path} with X-Roles: admin and a wrong token`)
    const rolesOnly = await h.req(method, path, { body, admin: false, headers: { 'X-Roles': 'admin,member' } })
    t.equal(rolesOnly.status, 403, `${method} ${path} with X-Roles: admin only`)
  }
  // Authorisation comes before validation: a bad body without the token is still a 403.
  t.equal((await h.req('PUT', '/v2/pools/x', { raw: '{', headers: { 'Content-Type': 'application/json' }, admin: false })).status, 403)
  t.equal((await h.req('GET', '/v2/pools', { admin: true })).status, 200, 'the token opens the door')
  t.equal((await h.req('GET', '/v1.1/pools')).status, 200, 'the admin API is served under v1.1 too, as Zaqar does')
  t.equal((await h.req('GET', '/v1.1/pools', { admin: false, headers: { 'X-Roles': 'admin' } })).status, 403, 'with the same token rule')
  t.equal((await h.req('GET', '/v2/pools/default/stats')).status, 404, "Missive's stats live under /v2/admin")
})

t.test('with no admin token configured, the admin API answers 403 to everyone', async (t) => {
  const h = await startPoolHarness(t, { config: { adminToken: undefined } })
  for (const [method, path, body] of ADMIN_CALLS) {
    const r = await h.req(method, path, { body, headers: { 'X-Auth-Token': '' } })
    t.equal(r.status, 403, `${method} ${path}`)
  }
  t.equal((await h.req('GET', '/v2/pools', { headers: { 'X-Auth-Token': ADMIN_TOKEN } })).status, 403)
})

t.test('PUT pool: validation and connection check', async (t) => {
  const h = await startPoolHarness(t)
  const put = (body: unknown, name = 'p1') => h.req('PUT', `/v2/pools/${name}`, { body })
  const bad = async (body: unknown, description: string | RegExp, what: string, title = 'Invalid request body') => {
    const r = await put(body)
    t.equal(r.status, 400, what)
    t.match(r.json, { title, description }, what)
  }
  const noBody = await h.req('PUT', '/v2/pools/p1')
  t.equal(noBody.status, 400)
  t.same(noBody.json, { title: 'Invalid request body', description: 'Request body can not be empty' })
  await bad([1], 'Document type not supported.', 'an array')
  await bad({ weight: 1, uri: 'sqlite:a', color: 'red' }, "Additional properties are not allowed ('color' was unexpected)", 'extra key')
  await bad({ uri: 'sqlite:a' }, "'weight' is a required property", 'no weight')
  await bad({ weight: 1 }, "'uri' is a required property", 'no uri')
  await bad({ weight: -1, uri: 'sqlite:a' }, '-1 is less than the minimum of 0', 'negative weight')
  await bad({ weight: 2 ** 32, uri: 'sqlite:a' }, '4294967296 is greater than the maximum of 4294967295', 'huge weight')
  await bad({ weight: '1', uri: 'sqlite:a' }, "'1' is not of type 'integer'", 'string weight')
  await bad({ weight: 1.5, uri: 'sqlite:a' }, "1.5 is not of type 'integer'", 'float weight')
  await bad({ weight: true, uri: 'sqlite:a' }, "True is not of type 'integer'", 'boolean weight')
  await bad({ weight: 1, uri: 7 }, "7 is not of type 'string'", 'number uri')
  await bad({ weight: 1, uri: `sqlite:${'a'.repeat(250)}` }, /is too long$/, 'uri over 255 characters')
  await bad({ weight: 1, uri: 'sqlite:a', flavor: 3 }, "3 is not of type 'string'", 'number flavor')
  await bad({ weight: 1, uri: 'sqlite:a', options: [] }, "[] is not of type 'object'", 'options not an object')
  await bad({ weight: 1, uri: 'sqlite:a', options: { workers: -1 } }, 'options.workers must be an integer from 0 (served inside the proxy) to 64.', 'workers -1')
  await bad({ weight: 1, uri: 'sqlite:a', options: { workers: 65 } }, 'options.workers must be an integer from 0 (served inside the proxy) to 64.', 'workers 65')
  await bad({ weight: 1, uri: 'sqlite:a', options: { workers: 1.5 } }, 'options.workers must be an integer from 0 (served inside the proxy) to 64.', 'workers 1.5')
  await bad({ weight: 1, uri: 'mongodb://db.example:27017' }, /^cannot connect to mongodb:\/\/db\.example:27017: there is no MongoDB store in this build/, 'MongoDB: no such store here')
  const secret = await put({ weight: 1, uri: 'redis://admin:hunter2@127.0.0.1:1?connect_timeout=300' })
  t.equal(secret.status, 400, 'unreachable Redis')
  t.match(secret.json.description, /^cannot connect to redis:\/\/\*\*\*@127\.0\.0\.1:1\?connect_timeout=300/)
  t.notMatch(secret.text, /hunter2/, 'the password is never echoed')
  const badName = await put({ weight: 1, uri: 'sqlite:a' }, 'no%2Fslash')
  t.equal(badName.status, 400)
  t.match(badName.json, { title: 'Invalid API request', description: /Pool names may contain only/ })
  t.equal((await put({ weight: 1, uri: 'sqlite:a' }, `${'n'.repeat(65)}`)).status, 400, 'name over 64 characters')

  const ok = await put({ weight: 5, uri: 'sqlite:p1.sqlite', options: { workers: 2, note: 'x' }, group: 'legacy' })
  t.equal(ok.status, 201)
  t.equal(ok.headers.get('location'), '/v2/pools/p1')
  t.equal(ok.text, '')
  t.same(await h.catalog.getPool('p1'), { name: 'p1', uri: 'sqlite:p1.sqlite', weight: 5, flavor: null, options: { workers: 2, note: 'x' } })
  t.equal((await put({ weight: 7, uri: 'sqlite:p1.sqlite', flavor: '' })).status, 201, 'PUT on an existing pool overwrites')
  t.same(await h.catalog.getPool('p1'), { name: 'p1', uri: 'sqlite:p1.sqlite', weight: 7, flavor: null, options: {} })
  const dup = await put({ weight: 1, uri: 'sqlite:p1.sqlite' }, 'p2')
  t.equal(dup.status, 409, 'a uri another pool uses')
  t.same(dup.json, { title: 'Resource conflict', description: 'Pool p1 already uses this uri.' })
})

t.test('a flavor mixing storage capabilities is refused', async (t) => {
  const h = await startPoolHarness(t)
  const redis = await startRedis(t, { appendfsync: 'everysec' })
  t.equal((await h.req('PUT', '/v2/pools/lite', { body: { weight: 1, uri: 'sqlite:lite.sqlite', flavor: 'small' } })).status, 201)
  const r = await h.req('PUT', '/v2/pools/fast', { body: { weight: 1, uri: `${redis.url}?durability=fast`, flavor: 'small' } })
  t.equal(r.status, 400)
  t.same(r.json, { title: 'Unable to create pool', description: 'The pool being added does not support the minimum set of capabilities' })
  t.equal((await h.req('PUT', '/v2/pools/fast', { body: { weight: 1, uri: `${redis.url}?durability=fast` } })).status, 201, 'fine without the flavor')
  const patch = await h.req('PATCH', '/v2/pools/fast', { body: { flavor: 'small' } })
  t.equal(patch.status, 400, 'nor by PATCH')
})

t.test('GET, PATCH, DELETE and list pools', async (t) => {
  const h = await startPoolHarness(t)
  for (const n of ['a', 'b', 'c']) {
    t.equal((await h.req('PUT', `/v2/pools/${n}`, { body: { weight: 2, uri: `sqlite:${n}.sqlite`, options: { workers: 1 } } })).status, 201)
  }
  const missing = await h.req('GET', '/v2/pools/nope')
  t.equal(missing.status, 404)
  t.same(missing.json, { title: 'Not found', description: 'Pool nope does not exist' })
  t.same((await h.req('GET', '/v2/pools/a')).json, { name: 'a', uri: 'sqlite:a.sqlite', weight: 2, flavor: null, href: '/v2/pools/a' })
  t.same((await h.req('GET', '/v2/pools/a?detailed=true')).json.options, { workers: 1 })
  t.equal((await h.req('GET', '/v2/pools/a?detailed=maybe')).status, 400)

  const none = await h.req('PATCH', '/v2/pools/a', { body: { color: 'red' } })
  t.equal(none.status, 400)
  t.same(none.json, { title: 'Invalid request body', description: 'One of `uri`, `weight`, `flavor`, or `options` needs to be specified' })
  t.equal((await h.req('PATCH', '/v2/pools/nope', { body: { weight: 1 } })).status, 404)
  t.equal((await h.req('PATCH', '/v2/pools/a', { body: { weight: -2 } })).status, 400)
  t.equal((await h.req('PATCH', '/v2/pools/a', { body: { uri: 'mongodb://x' } })).status, 400, 'a new uri must be reachable')
  const patched = await h.req('PATCH', '/v2/pools/a', { body: { weight: 9, flavor: 'gold', color: 'ignored' } })
  t.equal(patched.status, 200)
  t.same(patched.json, { name: 'a', uri: 'sqlite:a.sqlite', weight: 9, flavor: 'gold', href: '/v2/pools/a' })
  t.equal((await h.req('PATCH', '/v2/pools/a', { body: { flavor: '' } })).json.flavor, null, 'flavor "" clears it')

  // Listing: sorted by name, paged by name, Zaqar's next links.
  const first = await h.req('GET', '/v2/pools?limit=2')
  t.equal(first.status, 200)
  t.same(
    first.json.pools.map((p: { name: string }) => p.name),
    ['a', 'b'],
  )
  t.notOk('options' in first.json.pools[0], 'no options unless detailed')
  t.same(first.json.links, [{ rel: 'next', href: '/v2/pools?limit=2&marker=b' }])
  t.equal(first.headers.get('content-location'), '/v2/pools?limit=2')
  const second = await h.req('GET', '/v2/pools?limit=2&marker=b&detailed=true')
  t.same(
    second.json.pools.map((p: { name: string }) => p.name),
    ['c', 'default'],
  )
  t.same(second.json.pools[0].options, { workers: 1 })
  t.same(second.json.links, [{ rel: 'next', href: '/v2/pools?limit=2&marker=default&detailed=true' }])
  const end = await h.req('GET', '/v2/pools?marker=default')
  t.same(end.json, { pools: [], links: [] })
  t.equal((await h.req('GET', '/v2/pools?limit=0')).status, 400)
  t.same((await h.req('GET', '/v2/pools?limit=21')).json, { title: 'Invalid API request', description: 'Limit must be at least 1 and may not be greater than 20.' })

  // Delete: missing is fine; the default pool, a flavor's last pool and a pool holding queues are not.
  t.equal((await h.req('DELETE', '/v2/pools/nope')).status, 204)
  const def = await h.req('DELETE', '/v2/pools/default')
  t.equal(def.status, 403)
  t.match(def.json, { title: 'Unable to delete' })
  t.equal((await h.req('PUT', '/v2/flavors/solo', { body: { pool_list: ['b'] } })).status, 201)
  const last = await h.req('DELETE', '/v2/pools/b')
  t.equal(last.status, 403)
  t.same(last.json, { title: 'Unable to delete', description: 'This pool is used by flavors solo; It cannot be deleted.' })
  await h.catalog.place({ project: h.project, queue: 'held' }, 'c')
  const busy = await h.req('DELETE', '/v2/pools/c')
  t.equal(busy.status, 409)
  t.same(busy.json, { title: 'Unable to delete', description: 'Pool c still holds 1 queue; delete them before the pool.' })
  await h.catalog.removePlacement({ project: h.project, queue: 'held' })
  t.equal((await h.req('DELETE', '/v2/pools/c')).status, 204)
  t.equal((await h.req('GET', '/v2/pools/c')).status, 404)
})

t.test('flavors: PUT, GET, PATCH, DELETE, list, and their errors', async (t) => {
  const h = await startPoolHarness(t)
  const redis = await startRedis(t, { appendfsync: 'everysec' })
  for (const n of ['r1', 'r2']) {
    t.equal((await h.req('PUT', `/v2/pools/${n}`, { body: { weight: 1, uri: `${redis.url}/${n === 'r1' ? 1 : 2}?durability=fast` } })).status, 201)
  }
  const put = (name: string, body: unknown) => h.req('PUT', `/v2/flavors/${name}`, { body })
  t.match((await put('f', {})).json, { title: 'Invalid request body', description: "'pool_list' is a required property" })
  t.equal((await put('f', { pool_list: 'r1' })).status, 400, 'pool_list not an array')
  t.match((await put('f', { pool_list: ['r1'], extra: 1 })).json, { description: "Additional properties are not allowed ('extra' was unexpected)" })
  const empty = await put('f', { pool_list: [] })
  t.equal(empty.status, 400)
  t.same(empty.json, { title: 'Unable to create', description: 'Bad Request' })
  const unknown = await put('f', { pool_list: ['r1', 'ghost'] })
  t.equal(unknown.status, 400)
  t.same(unknown.json, { title: 'Unable to create', description: 'Flavor f could not be created, error:Pool ghost does not exist' })
  t.equal((await h.req('GET', '/v2/flavors/f')).status, 404, 'a failed PUT creates nothing')
  t.equal((await put('bad%20name', { pool_list: ['r1'] })).status, 400)

  const created = await put('f', { pool_list: ['r1'], capabilities: { ignored: true } })
  t.equal(created.status, 201)
  t.equal(created.headers.get('location'), '/v2/flavors/f')
  const got = await h.req('GET', '/v2/flavors/f')
  t.equal(got.status, 200)
  t.same(got.json, { name: 'f', capabilities: ['FIFO', 'CLAIMS', 'AOD', 'HIGH_THROUGHPUT'], pool_list: ['r1'], href: '/v2/flavors/f' }, 'Redis capabilities, as Zaqar reports them')
  t.equal((await h.req('GET', '/v2/pools/r1')).json.flavor, 'f', 'the pool carries the flavor')
  const missing = await h.req('GET', '/v2/flavors/nope')
  t.equal(missing.status, 404)
  t.same(missing.json, { title: 'Not found', description: 'Flavor nope does not exist' })

  const patch = (name: string, body: unknown) => h.req('PATCH', `/v2/flavors/${name}`, { body })
  t.same((await patch('f', { weight: 1 })).json, { title: 'Invalid request body', description: '`pool_list` needs to be specified' })
  t.equal((await patch('f', { pool_list: [] })).status, 400)
  t.equal((await patch('nope', { pool_list: ['r1'] })).status, 404)
  const fail = await patch('f', { pool_list: ['ghost'] })
  t.equal(fail.status, 400)
  t.same(fail.json, { title: 'updatefail', description: 'Flavor f could not be updated, error:Pool ghost does not exist' })
  const patched = await patch('f', { pool_list: ['r2', 'r1'] })
  t.equal(patched.status, 200)
  t.same(patched.json, { name: 'f', capabilities: ['FIFO', 'CLAIMS', 'AOD', 'HIGH_THROUGHPUT'], pool_list: ['r1', 'r2'], href: '/v2/flavors/f' })
  t.equal((await patch('f', { pool_list: ['r2'] })).json.pool_list.length, 1)
  t.equal((await h.req('GET', '/v2/pools/r1')).json.flavor, null, 'a dropped pool loses the flavor')

  t.equal((await put('e', { pool_list: ['default'] })).status, 201)
  t.same((await h.req('GET', '/v2/flavors/e')).json.capabilities, ['FIFO', 'CLAIMS', 'DURABILITY', 'AOD'], 'the embedded store is durable')
  const list = await h.req('GET', '/v2/flavors?limit=1')
  t.same(list.json, { flavors: [{ name: 'e', href: '/v2/flavors/e', pool_list: ['default'] }], links: [{ rel: 'next', href: '/v2/flavors?limit=1&marker=e' }] })
  const detailed = await h.req('GET', '/v2/flavors?marker=e&detailed=true')
  t.same(detailed.json.flavors, [{ name: 'f', href: '/v2/flavors/f', pool_list: ['r2'], capabilities: ['FIFO', 'CLAIMS', 'AOD', 'HIGH_THROUGHPUT'] }])
  t.equal((await h.req('GET', '/v2/flavors?limit=99')).status, 400)

  t.equal((await h.req('DELETE', '/v2/flavors/e')).status, 204)
  t.equal((await h.req('DELETE', '/v2/flavors/e')).status, 204, 'deleting a missing flavor is fine')
  t.equal((await h.req('GET', '/v2/pools/default')).json.flavor, null, 'deleting a flavor clears it on its pools')
  await put('g', { pool_list: ['r1'] })
  t.equal((await put('g', { pool_list: ['r1', 'r2'] })).status, 201, 'PUT overwrites')
  t.same((await h.req('GET', '/v2/flavors/g')).json.pool_list, ['r1', 'r2'])
  const noPools = await h.req('GET', '/v2/flavors?detailed=true')
  t.same(
    noPools.json.flavors.map((f: { name: string; pool_list?: string[] }) => [f.name, f.pool_list ?? null]),
    [
      ['f', null],
      ['g', ['r1', 'r2']],
    ],
    'pool_list only when the flavor has pools',
  )
})

t.test('queues: _flavor placement, weights, listing across pools, per-pool stats', async (t) => {
  const h = await startPoolHarness(t, { random: seededRandom(42) })
  const q = (m: string, path: string, body?: unknown, headers?: Record<string, string>) => h.req(m, `/v2/queues${path}`, { body, admin: false, ...(headers && { headers }) })
  for (const n of ['a', 'b', 'c']) t.equal((await h.req('PUT', `/v2/pools/${n}`, { body: { weight: 1, uri: `sqlite:${n}.sqlite` } })).status, 201)
  t.equal((await h.req('PUT', '/v2/flavors/gold', { body: { pool_list: ['c'] } })).status, 201)

  const unknown = await q('PUT', '/x', { _flavor: 'platinum' })
  t.equal(unknown.status, 400)
  t.same(unknown.json, { title: 'Invalid API request', description: 'Flavor platinum does not exist' })
  t.equal(await h.catalog.getPlacement({ project: h.project, queue: 'x' }), null, 'an unknown flavor places nothing')
  t.equal((await q('PUT', '/x', { _flavor: 5 })).status, 400, '_flavor must be a string')

  for (let i = 0; i < 20; i++) t.equal((await q('PUT', `/g${i}`, { _flavor: 'gold' })).status, 201)
  const placed = await Promise.all(Array.from({ length: 20 }, (_, i) => h.catalog.getPlacement({ project: h.project, queue: `g${i}` })))
  t.same(new Set(placed), new Set(['c']), 'every gold queue is on the flavor pool')
  // Unflavored queues (explicit and lazy) go to the default group only: a, b, default.
  for (let i = 0; i < 30; i++) t.equal((await q('PUT', `/n${i}`)).status, 201)
  for (let i = 0; i < 10; i++) t.equal((await q('POST', `/lazy${i}/messages`, { messages: [{ body: i }] })).status, 201)
  const groups = new Set<string | null>()
  for (let i = 0; i < 30; i++) groups.add(await h.catalog.getPlacement({ project: h.project, queue: `n${i}` }))
  for (let i = 0; i < 10; i++) groups.add(await h.catalog.getPlacement({ project: h.project, queue: `lazy${i}` }))
  t.same([...groups].sort(), ['a', 'b', 'default'], 'the default group spreads over its pools and never onto the flavor')

  // PATCH _flavor: to an unknown flavor 400; to a flavor the queue's pool is not in, 409.
  const patch = (queue: string, ops: unknown) =>
    h.req('PATCH', `/v2/queues/${queue}`, { body: ops, admin: false, headers: { 'Content-Type': 'application/openstack-messaging-v2.0-json-patch' } })
  t.equal((await patch('g0', [{ op: 'add', path: '/metadata/_flavor', value: 'nope' }])).status, 400)
  const onA = (await Promise.all([...Array(30).keys()].map(async (i) => [i, await h.catalog.getPlacement({ project: h.project, queue: `n${i}` })] as const))).find(
    ([, p]) => p === 'a',
  )!
  const moved = await patch(`n${onA[0]}`, [{ op: 'add', path: '/metadata/_flavor', value: 'gold' }])
  t.equal(moved.status, 409)
  t.match(moved.json.description, /lives on pool a, which is not in flavor gold/)
  t.equal((await patch('g1', [{ op: 'add', path: '/metadata/k', value: 1 }])).status, 200, 'other patches of a flavored queue are fine')

  // Listing: merged across the pools, sorted by name, paged by name.
  const all: string[] = []
  let next = '/v2/queues?limit=7'
  for (;;) {
    const page = await h.req('GET', next, { admin: false })
    t.equal(page.status, 200)
    if (page.json.queues.length === 0) break
    all.push(...page.json.queues.map((e: { name: string }) => e.name))
    next = page.json.links[0].href
  }
  const expected = [...Array(20).keys()].map((i) => `g${i}`).concat([...Array(10).keys()].map((i) => `lazy${i}`), [...Array(30).keys()].map((i) => `n${i}`)).sort()
  t.same(all, expected, 'every queue of every pool, once, in order')
  const counted = await h.req('GET', '/v2/queues?with_count=true&limit=1', { admin: false })
  t.equal(counted.json.count, 60, 'with_count sums the pools')

  // Weight 0 takes no new queue; with the whole default group at 0, new queues get a 503.
  for (const p of ['a', 'b', 'default']) t.equal((await h.req('PATCH', `/v2/pools/${p}`, { body: { weight: 0 } })).status, 200)
  const full = await q('PUT', '/nowhere')
  t.equal(full.status, 503)
  t.equal(full.headers.get('retry-after'), '1')
  t.equal((await q('PUT', '/gold-ok', { _flavor: 'gold' })).status, 201, 'the flavor still takes queues')

  // Per-pool stats.
  await q('POST', '/g0/messages', { messages: [{ body: 1 }, { body: 2 }] })
  await q('POST', '/g0/claims?limit=1', { ttl: 60, grace: 60 })
  const stats = await h.req('GET', '/v2/admin/pools/c/stats')
  t.equal(stats.status, 200)
  t.match(stats.json, {
    name: 'c',
    uri: 'sqlite:c.sqlite',
    flavor: 'gold',
    capabilities: ['FIFO', 'CLAIMS', 'DURABILITY', 'AOD'],
    queues: 21,
    messages: { total: 2, claimed: 1, free: 1, queues_counted: 21, complete: true },
    storage: { reachable: true, workers: [{ index: 0, reachable: true }] },
  })
  t.type(stats.json.storage.workers[0].ping_seconds, 'number')
  t.equal((await h.req('GET', '/v2/admin/pools/nope/stats')).status, 404)
})
