// Zaqar-exact admin API (issue 10): health with Zaqar's per-pool detail on both stores, the v1.1
// pools and flavors API, and Zaqar pool URIs imported verbatim.
import { Redis } from 'ioredis'
import t from 'tap'
import { startRedis } from '../helpers/index.js'
import { startPoolHarness, type PoolHarness } from '../pools/harness.js'

const OPS = ['bulk_delete_messages', 'claim_messages', 'create_queue', 'delete_claim', 'delete_messages', 'delete_queue', 'list_messages', 'post_messages']

async function fill(h: PoolHarness, queue: string, meta: Record<string, unknown>, n: number, claim: number): Promise<void> {
  t.equal((await h.req('PUT', `/v2/queues/${queue}`, { body: meta })).status, 201, `queue ${queue}`)
  const posted = await h.req('POST', `/v2/queues/${queue}/messages`, { body: { messages: Array.from({ length: n }, (_, i) => ({ body: i, ttl: 600 })) } })
  t.equal(posted.status, 201)
  t.equal((await h.req('POST', `/v2/queues/${queue}/claims?limit=${claim}`, { body: { ttl: 300, grace: 60 } })).status, 201)
}

t.test('GET /v2/health: storage_reachable, operation_status and message_volume per pool (SQLite and Redis)', async (t) => {
  const redis = await startRedis(t, { appendfsync: 'everysec' })
  const h = await startPoolHarness(t)
  t.equal((await h.req('PUT', '/v2/pools/r', { body: { weight: 1, uri: `${redis.url}?command_timeout=500&connect_timeout=500`, flavor: 'fr' } })).status, 201)
  t.equal((await h.req('PUT', '/v2/flavors/fr', { body: { pool_list: ['r'] } })).status, 201)
  await fill(h, 'onsqlite', {}, 5, 2)
  await fill(h, 'onredis', { _flavor: 'fr' }, 7, 3)

  for (const prefix of ['/v2', '/v1.1']) {
    const r = await h.req('GET', `${prefix}/health`)
    t.equal(r.status, 200, prefix)
    t.equal(r.json.catalog_reachable, true)
    for (const [pool, volume] of [
      ['default', { free: 3, claimed: 2, total: 5 }],
      ['r', { free: 4, claimed: 3, total: 7 }],
    ] as const) {
      const p = r.json[pool]
      t.equal(p.storage_reachable, true, `${prefix} ${pool}: storage_reachable`)
      t.same(p.message_volume, volume, `${prefix} ${pool}: message_volume claimed/free/total`)
      t.same(Object.keys(p.operation_status).sort(), OPS, `${prefix} ${pool}: Zaqar's probe steps`)
      for (const [op, s] of Object.entries(p.operation_status as Record<string, { succeeded: boolean; seconds: number; ref: string | null }>)) {
        t.match(s, { succeeded: true, seconds: Number, ref: null }, `${pool} ${op}`)
      }
      t.same(Object.keys(p).sort(), ['message_volume', 'operation_status', 'storage_reachable'], 'exactly Zaqar\'s keys')
    }
  }
  t.same((await h.req('GET', '/v2/queues')).json.queues.map((q: { name: string }) => q.name), ['onredis', 'onsqlite'], 'the probe leaves no queue in the caller\'s project')

  await redis.kill9()
  const down = await h.req('GET', '/v2/health')
  t.equal(down.status, 200, 'one pool down: still an answer')
  t.equal(down.json.r.storage_reachable, false, 'the Redis pool is reported unreachable')
  t.equal(down.json.r.operation_status.create_queue.succeeded, false)
  t.match(down.json.r.operation_status.create_queue.ref, /^[0-9a-f-]{36}$/, 'a failed step carries a ref')
  t.equal(down.json.default.storage_reachable, true)
})

t.test('v1.1 admin API: pools (group) and flavors (pool), one route table with v2', async (t) => {
  const h = await startPoolHarness(t)
  t.equal((await h.req('GET', '/v1.1/pools', { admin: false })).status, 403, 'the admin token is needed under v1.1 too')

  const put = await h.req('PUT', '/v1.1/pools/p1', { body: { weight: 10, uri: 'sqlite:p1.sqlite', group: 'g1', options: { max_retry_sleep: 1 } } })
  t.equal(put.status, 201)
  t.equal(put.headers.get('location'), '/v1.1/pools/p1')
  t.same((await h.req('GET', '/v1.1/pools/p1')).json, { name: 'p1', uri: 'sqlite:p1.sqlite', weight: 10, flavor: 'g1', href: '/v1.1/pools/p1' })
  t.same((await h.req('GET', '/v1.1/pools/p1?detailed=true')).json.options, { max_retry_sleep: 1 })
  t.equal((await h.req('GET', '/v2/pools/p1')).json.flavor, 'g1', 'the same pool under v2: group is the flavor')
  const patched = await h.req('PATCH', '/v1.1/pools/p1', { body: { weight: 5, group: 'g2' } })
  t.equal(patched.status, 200)
  t.same(patched.json, { name: 'p1', uri: 'sqlite:p1.sqlite', weight: 5, flavor: 'g2', href: '/v1.1/pools/p1' })
  t.equal((await h.req('PATCH', '/v1.1/pools/p1', { body: { group: 'a', flavor: 'b' } })).status, 400, 'group and flavor must agree')
  t.equal((await h.req('PATCH', '/v1.1/pools/nope', { body: { weight: 1 } })).status, 404)
  const list = await h.req('GET', '/v1.1/pools?limit=1')
  t.equal(list.status, 200)
  t.equal(list.json.pools[0].href, '/v1.1/pools/default')
  t.match(list.json.links[0].href, /^\/v1\.1\/pools\?/)

  // Flavors: v1.1's `pool` (the group, which is the flavor itself here), or the client's pool_list.
  const fput = await h.req('PUT', '/v1.1/flavors/g2', { body: { pool: 'g2', capabilities: {} } })
  t.equal(fput.status, 201)
  t.equal(fput.headers.get('location'), '/v1.1/flavors/g2')
  t.same((await h.req('GET', '/v1.1/flavors/g2')).json, { name: 'g2', href: '/v1.1/flavors/g2', pool: 'g2', project: h.project })
  t.same((await h.req('GET', '/v2/flavors/g2')).json.pool_list, ['p1'], 'under v2: the group\'s pools')
  const other = await h.req('PUT', '/v1.1/flavors/f9', { body: { pool: 'g2' } })
  t.equal(other.status, 400)
  t.match(other.json.description, /pool group is the flavor itself/)
  const empty = await h.req('PUT', '/v1.1/flavors/g7', { body: { capabilities: {} } })
  t.same(empty.json, { title: 'Unable to create', description: 'Flavor g7 could not be created. ' }, 'a group with no pools')
  t.equal((await h.req('PUT', '/v1.1/pools/p2', { body: { weight: 1, uri: 'sqlite:p2.sqlite' } })).status, 201)
  t.equal((await h.req('PUT', '/v1.1/flavors/f3', { body: { pool_list: ['p2'], capabilities: {} } })).status, 201, 'python-zaqarclient\'s body')
  t.equal((await h.req('GET', '/v1.1/pools/p2')).json.flavor, 'f3')
  t.equal((await h.req('PATCH', '/v1.1/flavors/f3', { body: { pool_list: ['p2'] } })).status, 200)
  t.equal((await h.req('PATCH', '/v1.1/flavors/f3', { body: {} })).status, 400)
  const flist = await h.req('GET', '/v1.1/flavors')
  t.same(
    flist.json.flavors,
    [
      { name: 'f3', href: '/v1.1/flavors/f3', pool: 'f3', project: h.project },
      { name: 'g2', href: '/v1.1/flavors/g2', pool: 'g2', project: h.project },
    ],
  )
  t.equal((await h.req('DELETE', '/v1.1/flavors/f3')).status, 204)
  t.equal((await h.req('GET', '/v1.1/flavors/f3')).status, 404)
  t.equal((await h.req('DELETE', '/v1.1/pools/p2')).status, 204)
  t.equal((await h.req('GET', '/v1.1/pools/p2')).status, 404)
  t.equal((await h.req('GET', '/v1.1/admin/pools/p1/stats')).status, 404, 'Missive\'s pool stats stay v2-only')
})

t.test('Zaqar pool URIs import verbatim: dbid, socket_timeout, an ignored path, a password-only user-info', async (t) => {
  const redis = await startRedis(t, { appendfsync: 'everysec' })
  const h = await startPoolHarness(t)
  const uri = `redis://127.0.0.1:${redis.port}/zaqar?dbid=3&socket_timeout=2`
  const put = await h.req('PUT', '/v1.1/pools/z', { body: { weight: 1, uri, group: 'zf' } })
  t.equal(put.status, 201, put.text)
  t.equal((await h.req('PUT', '/v2/flavors/zf', { body: { pool_list: ['z'] } })).status, 201)
  t.equal((await h.req('PUT', '/v2/queues/zq', { body: { _flavor: 'zf' } })).status, 201)
  t.equal((await h.req('POST', '/v2/queues/zq/messages', { body: { messages: [{ body: 'hi' }] } })).status, 201)
  const probe = new Redis(redis.port, '127.0.0.1', { db: 3 })
  t.teardown(() => probe.disconnect())
  t.ok((await probe.dbsize()) > 0, 'the data is in database 3 (dbid)')
  await probe.select(0)
  t.equal(await probe.dbsize(), 0, 'and not in database 0 (the path "/zaqar" is ignored, as Zaqar ignores it)')
  t.equal((await h.req('GET', '/v2/queues/zq/messages?echo=true')).json.messages[0].body, 'hi')

  for (const prefix of ['/v2', '/v1.1']) {
    const mongo = await h.req('PUT', `${prefix}/pools/m`, { body: { weight: 1, uri: 'mongodb://admin:pw@mongo.example:27017/zaqar?replicaSet=rs0' } })
    t.equal(mongo.status, 400, `${prefix}: mongodb:// is a 4xx`)
    t.match(mongo.json.description, /^cannot connect to mongodb:\/\/\*\*\*@mongo\.example:27017\/zaqar\?replicaSet=rs0: there is no MongoDB store in this build/)
    t.notMatch(mongo.text, /pw/)
  }
  const sentinel = await h.req('PUT', '/v2/pools/s', { body: { weight: 1, uri: 'redis://s1:26379,s2?master=dumbledore' } })
  t.equal(sentinel.status, 400)
  t.match(sentinel.json.description, /Sentinel/)
})

t.test('the v1.1 home document lists the admin resources in admin mode, as Zaqar v1.1 does', async (t) => {
  const h = await startPoolHarness(t)
  const home = await h.req('GET', '/v1.1/')
  t.equal(home.status, 200)
  t.equal(home.json.resources['rel/pools']['href-template'], '/v1.1/pools{?detailed,limit,marker}')
  t.same(home.json.resources['rel/pool'].hints.allow, ['GET', 'PUT', 'PATCH', 'DELETE'])
  t.equal(home.json.resources['rel/flavors']['href-vars'].limit, 'param/flavor_limit')
  t.equal(home.json.resources['rel/flavor']['href-template'], '/v1.1/flavors/{flavor_name}')
  t.equal(home.json.resources['rel/health'].href, '/v1.1/health')
})
