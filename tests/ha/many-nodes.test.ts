/**
 * Many nodes, one catalog (docs/ha.md, "Many nodes, one catalog"): two whole services (`missive
 * serve`, own data directories and ports) sharing a Redis catalog and three Redis pools.
 * - Concurrent first posts to the same new queue, one through each node at the same moment: the
 *   queue lands in one pool (its messages are in one Redis only, the catalog says that pool) and
 *   both nodes route it there (each reads both messages).
 * - A weight change made through one node is followed by the other: once it has seen it, every
 *   new queue it places goes where the new weights say.
 * - A pool removed through one node stops being served by the other (its health no longer lists it).
 * The time each change took to reach the other node is printed (bound: docs/ha.md).
 */
import t from 'tap'
import { RedisCatalog } from '../../catalog/stores/redis.js'
import { startMissive, startRedis, waitFor } from '../helpers/index.js'
import { ADMIN_TOKEN, client, pool, queuesWithMessages, redisClient } from '../pools/util.js'

t.setTimeout(240_000)

t.test('two nodes, one Redis catalog: one placement per queue, changes followed', async (t) => {
  const catalogRedis = await startRedis(t)
  const redis = await Promise.all([0, 1, 2].map(() => startRedis(t, { appendfsync: 'everysec' })))
  const env = {
    MISSIVE_ADMIN_TOKEN: ADMIN_TOKEN,
    MISSIVE_DURABILITY: 'fast',
    MISSIVE_CATALOG: `${catalogRedis.url}?prefix=many:`,
  }
  const a = await startMissive(t, { env })
  const b = await startMissive(t, { env })
  const ca = client(a.baseUrl)
  const cb = client(b.baseUrl, ca.project)
  const admin = (method: string, path: string, body?: unknown) => ca.req(method, path, { body, admin: true })
  const cat = await RedisCatalog.open({ host: '127.0.0.1', port: catalogRedis.port, prefix: 'many:' })
  t.teardown(() => cat.close())

  for (let i = 0; i < 3; i++) t.equal((await admin('PUT', `/v2/pools/r${i}`, { weight: 1, uri: `${redis[i]!.url}?durability=fast` })).status, 201, `pool r${i}`)
  t.equal((await admin('PATCH', '/v2/pools/default', { weight: 0 })).status, 200, 'new queues go to r0..r2 only')
  // Both nodes serve every pool (each node's supervisor starts the new pools' workers).
  for (const [name, c] of [['A', ca], ['B', cb]] as const) {
    await waitFor(
      async () => {
        const h = await c.req('GET', '/v2/health?detailed=true', { admin: true })
        return ['r0', 'r1', 'r2'].every((p) => h.json?.[p]?.storage_reachable === true)
      },
      { what: `node ${name} serving r0..r2`, timeoutMs: 30_000 },
    )
  }

  await t.test('concurrent first posts through both nodes land in one pool', async (t) => {
    const names = Array.from({ length: 300 }, (_, i) => `race-${i}`)
    const post = (c: typeof ca, q: string, from: string) => c.req('POST', `/v2/queues/${q}/messages`, { body: { messages: [{ body: { from } }] } })
    const statuses = await pool(names, 16, async (q) => (await Promise.all([post(ca, q, 'A'), post(cb, q, 'B')])).map((r) => r.status))
    t.same(new Set(statuses.flat()), new Set([201]), 'every post answered 201')

    const found = await Promise.all(redis.map((r) => queuesWithMessages(redisClient(t, r.port))))
    const where = new Map<string, string[]>()
    found.forEach((set, i) => {
      for (const key of set) if (key.startsWith(`${ca.project}/race-`)) where.set(key, [...(where.get(key) ?? []), `r${i}`])
    })
    t.equal(where.size, names.length, 'every queue is somewhere')
    t.same(
      [...where].filter(([, pools]) => pools.length !== 1),
      [],
      'no queue has messages in two pools',
    )
    const counts = [0, 1, 2].map((i) => [...where.values()].filter((p) => p[0] === `r${i}`).length)
    t.comment(`placement: r0=${counts[0]} r1=${counts[1]} r2=${counts[2]}`)
    t.ok(counts.every((n) => n > 0), 'the queues spread over the three pools (both nodes placed some)')
    const mismatched: string[] = []
    for (const q of names) {
      const placed = await cat.getPlacement({ project: ca.project, queue: q })
      if (placed !== where.get(`${ca.project}/${q}`)?.[0]) mismatched.push(`${q}: catalog ${placed}, data ${where.get(`${ca.project}/${q}`)}`)
    }
    t.same(mismatched, [], "the catalog's placement is where the data is")
    const totals = await pool(names.slice(0, 60), 8, async (q) => [
      (await ca.req('GET', `/v2/queues/${q}/stats`)).json?.messages?.total,
      (await cb.req('GET', `/v2/queues/${q}/stats`)).json?.messages?.total,
    ])
    t.same(
      totals.filter(([x, y]) => x !== 2 || y !== 2),
      [],
      'both nodes route each queue to the same pool: each reads both messages',
    )
  })

  await t.test('a weight change through A is followed by B', async (t) => {
    const changed = performance.now()
    t.equal((await admin('PATCH', '/v2/pools/r0', { weight: 0 })).status, 200)
    t.equal((await admin('PATCH', '/v2/pools/r1', { weight: 0 })).status, 200)
    // B has followed once it places queues on r2 only: ten in a row (by chance, with the old
    // weights, one in 59,049).
    let n = 0
    let inARow = 0
    await waitFor(
      async () => {
        const q = `weighted-probe-${n++}`
        await cb.req('PUT', `/v2/queues/${q}`)
        inARow = (await cat.getPlacement({ project: ca.project, queue: q })) === 'r2' ? inARow + 1 : 0
        return inARow >= 10
      },
      { what: 'B placing on r2 only' },
    )
    t.comment(`weights changed through A: B placed by the new weights within ${Math.round(performance.now() - changed)} ms (${n} probes, the last ten on r2)`)
    const names = Array.from({ length: 40 }, (_, i) => `weighted-${i}`)
    await pool(names, 8, (q) => cb.req('PUT', `/v2/queues/${q}`))
    const placed = await Promise.all(names.map((q) => cat.getPlacement({ project: ca.project, queue: q })))
    t.same(new Set(placed), new Set(['r2']), 'B places every new queue by the new weights')
  })

  await t.test('a pool removed through A is dropped by B', async (t) => {
    const spare = await startRedis(t, { appendfsync: 'everysec' })
    t.equal((await admin('PUT', '/v2/pools/gone', { weight: 0, uri: `${spare.url}?durability=fast` })).status, 201)
    await waitFor(async () => (await cb.req('GET', '/v2/health?detailed=true', { admin: true })).json?.gone?.storage_reachable === true, {
      what: 'B serving pool gone',
      timeoutMs: 30_000,
    })
    const removed = performance.now()
    t.equal((await admin('DELETE', '/v2/pools/gone')).status, 204)
    await waitFor(async () => !('gone' in ((await cb.req('GET', '/v2/health', { admin: true })).json ?? { gone: 1 })), { what: 'B dropping pool gone' })
    t.comment(`pool removed through A: B's health stopped listing it within ${Math.round(performance.now() - removed)} ms (each health call probes every pool)`)
    t.notOk('gone' in (await ca.req('GET', '/v2/health', { admin: true })).json, 'A dropped it too')
  })
})
