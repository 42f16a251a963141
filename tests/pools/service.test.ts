/**
 * Pools in a whole service (`missive serve` from the build, real redis-server processes): the
 * supervisor starts each pool's workers when the pool is added through the API; queues spread
 * over three Redis pools by weight; a flavor keeps its queues on its pool; each queue's messages
 * live only in its pool's Redis; killing one pool's worker gives that pool's queues 503 +
 * Retry-After until the supervisor restarts it, while other pools keep serving.
 */
import t from 'tap'
import { sleep, startMissive, startRedis, waitFor } from '../helpers/index.js'
import { ADMIN_TOKEN, client, pool, poolWorkerPids, queuesWithMessages, redisClient } from './util.js'

/** Chi-square critical value, 2 degrees of freedom, p = 0.0001: a correct spread fails 1 run in 10,000. */
const CHI2_CRIT_2DOF = 18.42

t.setTimeout(240_000)

t.test('three Redis pools 1:1:2, a flavor, and a killed worker', async (t) => {
  const redis = await Promise.all([1, 2, 3].map(() => startRedis(t, { appendfsync: 'everysec' })))
  const m = await startMissive(t, { env: { MISSIVE_ADMIN_TOKEN: ADMIN_TOKEN, MISSIVE_DURABILITY: 'fast' } })
  const c = client(m.baseUrl)
  const admin = (method: string, path: string, body?: unknown) => c.req(method, path, { body, admin: true })

  const weights = [1, 1, 2]
  for (let i = 0; i < 3; i++) {
    const r = await admin('PUT', `/v2/pools/r${i}`, { weight: weights[i], uri: `${redis[i]!.url}?durability=fast` })
    t.equal(r.status, 201, `pool r${i} created`)
  }
  // The default (embedded) pool keeps its place but takes no new queue.
  t.equal((await admin('PATCH', '/v2/pools/default', { weight: 0 })).status, 200)
  await waitFor(
    async () => {
      for (let i = 0; i < 3; i++) if (!(await admin('GET', `/v2/admin/pools/r${i}/stats`)).json?.storage?.reachable) return false
      return true
    },
    { what: 'the new pools serving', timeoutMs: 15_000 },
  )
  const pids = await poolWorkerPids(m.pid, m.dataDir)
  t.same([...pids.keys()].sort(), ['default', 'r0', 'r1', 'r2'], 'the supervisor runs one worker per pool')

  // 4,000 queues through HTTP, each created (and placed) lazily by its first post.
  const n = 4000
  const names = Array.from({ length: n }, (_, i) => `q${i}`)
  const started = performance.now()
  const statuses = await pool(names, 128, async (q) => (await c.req('POST', `/v2/queues/${q}/messages`, { body: { messages: [{ body: { q } }] } })).status)
  t.same(new Set(statuses), new Set([201]), 'every queue created by a post')
  t.comment(`4,000 first posts in ${Math.round(performance.now() - started)} ms`)

  const found = await Promise.all(redis.map((r) => queuesWithMessages(redisClient(t, r.port))))
  const mine = found.map((s) => new Set([...s].filter((k) => k.startsWith(`${c.project}/`))))
  const counts = mine.map((s) => s.size)
  t.equal(
    counts.reduce((a, b) => a + b, 0),
    n,
    'every queue has its messages in exactly one Redis (the sets are disjoint and cover all)',
  )
  const union = new Set(mine.flatMap((s) => [...s]))
  t.equal(union.size, n, 'no queue in two pools')
  const expected = weights.map((w) => (n * w) / 4)
  const chi2 = counts.reduce((s, o, i) => s + (o - expected[i]!) ** 2 / expected[i]!, 0)
  t.comment(`placement: r0=${counts[0]} r1=${counts[1]} r2=${counts[2]} (expected ${expected.join('/')}), chi-square ${chi2.toFixed(2)}`)
  t.ok(chi2 < CHI2_CRIT_2DOF, `spread in proportion to the weights (chi-square ${chi2.toFixed(2)} < ${CHI2_CRIT_2DOF})`)
  // The admin stats agree with the storage.
  for (let i = 0; i < 3; i++) {
    const s = (await admin('GET', `/v2/admin/pools/r${i}/stats`)).json
    t.equal(s.queues, counts[i], `r${i}: the catalog counts the queues the Redis holds`)
  }
  // Messages are summed over at most 1,000 queues per call (each holds one message here).
  const sample = await admin('GET', '/v2/admin/pools/r0/stats')
  const counted = Math.min(counts[0]!, 1000)
  t.match(sample.json.messages, { total: counted, free: counted, claimed: 0, queues_counted: counted, complete: counts[0]! <= 1000 })

  // A flavor with one pool (another database of the first server): its queues land only there.
  t.equal((await admin('PUT', '/v2/pools/solo', { weight: 1, uri: `${redis[0]!.url}/3?durability=fast` })).status, 201)
  t.equal((await admin('PUT', '/v2/flavors/single', { pool_list: ['solo'] })).status, 201)
  const flavor = await admin('GET', '/v2/flavors/single')
  t.same(flavor.json, { name: 'single', capabilities: ['FIFO', 'CLAIMS', 'AOD', 'HIGH_THROUGHPUT'], pool_list: ['solo'], href: '/v2/flavors/single' })
  const flavored = Array.from({ length: 40 }, (_, i) => `f${i}`)
  await waitFor(async () => (await c.req('PUT', '/v2/queues/f0', { body: { _flavor: 'single' } })).status < 300, { what: 'the flavor pool' })
  const fstatus = await pool(flavored, 16, async (q) => {
    await c.req('PUT', `/v2/queues/${q}`, { body: { _flavor: 'single' } })
    return (await c.req('POST', `/v2/queues/${q}/messages`, { body: { messages: [{ body: 1 }] } })).status
  })
  t.same(new Set(fstatus), new Set([201]))
  const inSolo = await queuesWithMessages(redisClient(t, redis[0]!.port, 3))
  t.same([...inSolo].filter((k) => k.startsWith(`${c.project}/`)).sort(), flavored.map((q) => `${c.project}/${q}`).sort(), 'all flavored queues, and only them, in the flavor pool')
  const again = await Promise.all(redis.map((r) => queuesWithMessages(redisClient(t, r.port))))
  t.notOk(
    again.some((s) => flavored.some((q) => s.has(`${c.project}/${q}`))),
    'no flavored queue in a default-group pool',
  )

  // Kill the worker of r1: its queues answer 503 + Retry-After until it is back; r0 and r2 serve throughout.
  const queueOf = (i: number): string => [...mine[i]!][0]!.slice(c.project.length + 1)
  const [q0, q1, q2] = [queueOf(0), queueOf(1), queueOf(2)]
  const victim = (await poolWorkerPids(m.pid, m.dataDir)).get('r1')![0]!
  process.kill(victim, 'SIGKILL')
  const seen: { status: number; retryAfter: string | null }[] = []
  const others: number[] = []
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline) {
    const [a, b, d] = await Promise.all([
      c.req('GET', `/v2/queues/${q1}/stats`),
      c.req('GET', `/v2/queues/${q0}/stats`),
      c.req('GET', `/v2/queues/${q2}/stats`),
    ])
    seen.push({ status: a.status, retryAfter: a.headers.get('retry-after') })
    others.push(b.status, d.status)
    if (a.status === 200 && seen.some((s) => s.status === 503)) break
    await sleep(10)
  }
  const unavailable = seen.filter((s) => s.status === 503)
  t.ok(unavailable.length > 0, `the killed pool's queue answered 503 (${unavailable.length} times)`)
  t.ok(
    unavailable.every((s) => s.retryAfter === '1'),
    'every 503 carries Retry-After',
  )
  t.same(new Set(seen.map((s) => s.status)), new Set([200, 503]), 'nothing but 503 before the restart and 200 after')
  t.equal(seen[seen.length - 1]!.status, 200, 'served again once the supervisor restarted the worker')
  t.same(new Set(others), new Set([200]), `the other pools served every request meanwhile (${others.length})`)
  t.not((await poolWorkerPids(m.pid, m.dataDir)).get('r1')![0], victim, 'a new worker process')
  const claimed = await c.req('POST', `/v2/queues/${q1}/claims`, { body: { ttl: 60, grace: 60 } })
  t.equal(claimed.status, 201, 'the restarted worker serves the queue and its message')

  // Removing a pool stops its worker; a pool with queues cannot be removed.
  t.equal((await admin('DELETE', '/v2/pools/r2')).status, 409)
  t.equal((await admin('PUT', '/v2/pools/spare', { weight: 0, uri: `${redis[1]!.url}/5?durability=fast` })).status, 201)
  await waitFor(async () => (await poolWorkerPids(m.pid, m.dataDir)).has('spare'), { what: 'the spare pool worker' })
  t.equal((await admin('DELETE', '/v2/pools/spare')).status, 204)
  await waitFor(async () => !(await poolWorkerPids(m.pid, m.dataDir)).has('spare'), { what: 'the spare pool worker stopping' })
  t.pass('the supervisor stopped the removed pool worker')
})
