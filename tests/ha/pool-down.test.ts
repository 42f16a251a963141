/**
 * Failure isolation in a whole service (docs/ha.md, "Failure isolation"): three Redis pools and
 * one SQLite pool, each queue pinned to one by a flavor. One pool's store is stopped — its Redis
 * SIGSTOPped (alive, socket open, answering nothing), then SIGKILLed, then the SQLite pool's
 * worker SIGSTOPped — and in each case:
 * - that pool's requests get 503 + Retry-After + {title, description}, within the client's
 *   timeout although the pool's command timeout is ten minutes (no stall until the store's timeout);
 * - every other pool keeps serving (posts 201, claims, stats);
 * - GET and HEAD /v2/ping stay 204 (this node can serve);
 * - GET /v2/health?detailed=true shows that pool unreachable with its breaker open, the others
 *   reachable, closed, role master; `missive_pool_storage_up` is 0 for that pool only;
 * and once the store is back the pool serves again.
 */
import t, { type Test } from 'tap'
import { startMissive, startRedis, waitFor, type RedisProcess } from '../helpers/index.js'
import { bad503, type HttpResp } from '../helpers/http.js'
import { ADMIN_TOKEN, client, poolWorkerPids } from '../pools/util.js'

t.setTimeout(240_000)

/** Far beyond the client's timeout (15 s, tests/pools/util.ts): a request left to the store's timeout fails the test. */
const COMMAND_TIMEOUT_MS = 600_000

t.test('one pool down: its requests fail fast, the others serve, ping stays 204', async (t) => {
  const top = t
  const redis: RedisProcess[] = await Promise.all([0, 1, 2].map(() => startRedis(t, { appendfsync: 'everysec' })))
  const m = await startMissive(t, {
    env: { MISSIVE_ADMIN_TOKEN: ADMIN_TOKEN, MISSIVE_DURABILITY: 'fast' },
    // Short stall and check periods keep the test quick; the worker's own hang detection (for the
    // SQLite pool's stopped worker) is left at its default.
    config: { poolStallMs: 1000, poolCheckMs: 200 },
  })
  const c = client(m.baseUrl)
  const admin = (method: string, path: string, body?: unknown): Promise<HttpResp> => c.req(method, path, { body, admin: true })
  const uris = redis.map((r) => `${r.url}?durability=fast&command_timeout=${COMMAND_TIMEOUT_MS}`)
  const pools = ['r0', 'r1', 'r2', 's']
  for (const [i, name] of pools.entries()) {
    const uri = name === 's' ? 'sqlite:s.sqlite' : uris[i]!
    t.equal((await admin('PUT', `/v2/pools/${name}`, { weight: 1, uri, flavor: `f-${name}` })).status, 201, `pool ${name}`)
    t.equal((await admin('PUT', `/v2/flavors/f-${name}`, { pool_list: [name] })).status, 201, `flavor f-${name}`)
  }
  t.equal((await admin('PATCH', '/v2/pools/default', { weight: 0 })).status, 200)
  for (const name of pools) {
    await waitFor(async () => (await c.req('PUT', `/v2/queues/q-${name}`, { body: { _flavor: `f-${name}` } })).status < 300, {
      what: `queue q-${name} on pool ${name}`,
      timeoutMs: 20_000,
    })
  }
  const post = (q: string): Promise<HttpResp> =>
    c.req('POST', `/v2/queues/${q}/messages`, { body: { messages: [{ body: { q }, ttl: 600 }] } })
  for (const name of pools) t.equal((await post(`q-${name}`)).status, 201, `q-${name} serves`)

  /** A few requests to `q`: post, claim, stats, list. */
  const traffic = (q: string): Promise<HttpResp[]> =>
    Promise.all([
      post(q),
      c.req('POST', `/v2/queues/${q}/claims`, { body: { ttl: 60, grace: 60 } }),
      c.req('GET', `/v2/queues/${q}/stats`),
      c.req('GET', `/v2/queues/${q}/messages?echo=true`),
    ])
  const served = (rs: HttpResp[]): number[] => rs.map((r) => r.status).filter((s) => s !== 200 && s !== 201 && s !== 204)
  const health = async (): Promise<Record<string, { storage_reachable: boolean; breaker: string; role: string | null }>> => {
    const r = await admin('GET', '/v2/health?detailed=true')
    return r.json
  }

  /** With `down` stopped: its requests 503 fast, the others serve, ping 204, health says which. */
  const checkIsolated = async (t: Test, down: string): Promise<void> => {
    const others = pools.filter((p) => p !== down)
    // The first requests after the stop, and later ones once the breaker is open.
    for (let round = 0; round < 3; round++) {
      const [failed, ok, pings] = await Promise.all([
        traffic(`q-${down}`),
        Promise.all(others.map((p) => traffic(`q-${p}`))),
        Promise.all([c.req('GET', '/v2/ping'), c.req('HEAD', '/v2/ping')]),
      ])
      t.same(failed.map(bad503), [null, null, null, null], `round ${round}: ${down}'s requests: 503 + Retry-After + {title, description}`)
      t.same(ok.flatMap(served), [], `round ${round}: every other pool serves`)
      t.same(
        pings.map((r) => r.status),
        [204, 204],
        `round ${round}: GET and HEAD /v2/ping stay 204`,
      )
    }
    const h = await health()
    const metrics = await (await fetch(`${m.baseUrl}/metrics`)).text()
    const up = (pool: string): string | undefined => new RegExp(`^missive_pool_storage_up\\{[^}]*pool="${pool}"[^}]*\\} (\\d+)$`, 'm').exec(metrics)?.[1]
    t.same(
      pools.map((p) => [p, up(p)]),
      pools.map((p) => [p, p === down ? '0' : '1']),
      `missive_pool_storage_up: 0 for ${down} only`,
    )
    t.match(h[down], { storage_reachable: false, breaker: 'open' }, `health: ${down} unreachable, breaker open`)
    for (const p of others) {
      t.match(h[p], { storage_reachable: true, breaker: 'closed', role: p === 's' ? 'embedded' : 'master' }, `health: ${p} reachable`)
    }
  }

  const recovered = async (name: string): Promise<void> => {
    await waitFor(async () => (await post(`q-${name}`)).status === 201, { what: `pool ${name} serving again`, timeoutMs: 30_000 })
    await waitFor(async () => (await health())[name]?.breaker === 'closed', { what: `pool ${name}'s breaker closed` })
  }

  await t.test('Redis SIGSTOPped', async (t) => {
    process.kill(redis[1]!.pid, 'SIGSTOP')
    t.teardown(() => {
      try {
        process.kill(redis[1]!.pid, 'SIGCONT')
      } catch {
        // gone
      }
    })
    await checkIsolated(t, 'r1')
    process.kill(redis[1]!.pid, 'SIGCONT')
    await recovered('r1')
  })

  await t.test('Redis killed, then restarted on its data', async (t) => {
    const { port, dir } = redis[1]!
    await redis[1]!.kill9()
    await checkIsolated(t, 'r1')
    // Owned by the whole test, not this subtest (whose teardown would stop it).
    redis[1] = await startRedis(top, { appendfsync: 'everysec', port, dir })
    await recovered('r1')
  })

  await t.test("the SQLite pool's worker SIGSTOPped", async (t) => {
    const [pid] = (await poolWorkerPids(m.pid, m.dataDir)).get('s') ?? []
    t.ok(pid, 'the SQLite pool has a worker')
    process.kill(pid!, 'SIGSTOP')
    t.teardown(() => {
      try {
        process.kill(pid!, 'SIGCONT')
      } catch {
        // replaced: the supervisor killed it
      }
    })
    // Its requests: 503 once the proxy takes the worker for hung (workerHungAfterMs), its breaker
    // opens on those failures; the supervisor replaces the worker on its own.
    await checkIsolated(t, 's')
    await recovered('s')
  })

  for (const name of pools) t.equal((await post(`q-${name}`)).status, 201, `q-${name} serves at the end`)
})
