/**
 * Dead-lettering with several pools (issue 11, item 2; docs/pools.md, "Dead-letter queues across
 * pools"): a message claimed past `_max_claim_count` ends in its `_dead_letter_queue` where the
 * catalog places that queue — on another pool (SQLite → Redis, Redis → Redis), or, for a DLQ with
 * no placement, on the source's pool with a placement written — and is readable through the API.
 * When the DLQ's pool is down the message stays in the source and lands once the pool is back.
 * Also: the Redis driver's retry when its memory of a queue's DLQ is missing (a restarted worker)
 * or stale (metadata changed by another worker); and the whole service (`missive serve`, RPC to
 * the workers) dead-lettering from a Redis pool whose worker was just restarted, to another pool
 * and in-pool.
 */
import t from 'tap'
import type { Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { RedisDriver } from '../../worker/storage/redis/driver.js'
import { parseRedisUri } from '../../shared/storage/redis-uri.js'
import type { QueueRef } from '../../shared/storage/contract.js'
import { startMissive, startRedis, waitFor } from '../helpers/index.js'
import { startPoolHarness, type PoolHarness } from '../pools/harness.js'
import { ADMIN_TOKEN, client, poolWorkerPids, queuesWithMessages, redisClient } from '../pools/util.js'

t.setTimeout(120_000)

/** Adds pool `name` at `uri` with a flavor of the same name holding only it. */
async function addPool(t: Test, h: PoolHarness, name: string, uri: string): Promise<void> {
  t.equal((await h.req('PUT', `/v2/pools/${name}`, { body: { weight: 1, uri } })).status, 201, `pool ${name} added`)
  t.equal((await h.req('PUT', `/v2/flavors/${name}`, { body: { pool_list: [name] } })).status, 201, `flavor ${name} created`)
  await h.pools.refresh()
}

/** Creates `queue` on `pool` (via its flavor; `null`: the default group) with `meta`. */
async function createOn(h: PoolHarness, queue: string, pool: string | null, meta: Record<string, unknown> = {}): Promise<void> {
  const r = await h.req('PUT', `/v2/queues/${queue}`, { body: { ...meta, ...(pool !== null && { _flavor: pool }) } })
  if (r.status !== 201) throw new Error(`PUT ${queue}: ${r.status} ${r.text}`)
}

/** Claims `queue` and releases the claim: one more on each message's claim count. */
async function claimAndRelease(h: PoolHarness, queue: string): Promise<number> {
  const r = await h.req('POST', `/v2/queues/${queue}/claims`, { body: { ttl: 60, grace: 60 } })
  if (r.status === 201) {
    const loc = r.headers.get('location')!
    await h.req('DELETE', loc.slice(loc.indexOf('/v2/')))
  }
  return r.status
}

/** The bodies of the queue's messages, echo on, claimed ones too. */
async function bodies(h: PoolHarness, queue: string): Promise<unknown[]> {
  const r = await h.req('GET', `/v2/queues/${queue}/messages?echo=true&include_claimed=true&limit=20`)
  if (r.status !== 200) throw new Error(`GET ${queue}/messages: ${r.status} ${r.text}`)
  return (r.json.messages as { body: unknown }[]).map((m) => m.body)
}

/**
 * Posts one poison message to `src` (max claim count 1, DLQ `dlq`), claims it once, then claims
 * again: the second claim finds it due for the DLQ.
 */
async function poison(t: Test, h: PoolHarness, src: string): Promise<string> {
  const body = { poison: randomUUID() }
  t.equal((await h.req('POST', `/v2/queues/${src}/messages`, { body: { messages: [{ body, ttl: 3600 }] } })).status, 201)
  t.equal(await claimAndRelease(h, src), 201, 'first claim takes the message')
  t.equal(await claimAndRelease(h, src), 204, 'the second claim does not hand it out: it is due for the DLQ')
  return body.poison
}

const DLQ_META = { _max_claim_count: 1, _dead_letter_queue: 'dlq', _dead_letter_queue_messages_ttl: 900 }

for (const [label, srcStore] of [
  ['SQLite → Redis', 'sqlite'],
  ['Redis → Redis', 'redis'],
] as const) {
  t.test(`${label}: the DLQ on another pool receives the message`, async (t) => {
    const h = await startPoolHarness(t)
    const rd = await startRedis(t, { appendfsync: 'everysec' })
    await addPool(t, h, 'dst', `${rd.url}/1?durability=fast`)
    let src: string | null = null
    if (srcStore === 'redis') {
      const rs = await startRedis(t, { appendfsync: 'everysec' })
      await addPool(t, h, 'src', `${rs.url}?durability=fast`)
      src = 'src'
    }
    await createOn(h, 'jobs', src, DLQ_META)
    await createOn(h, 'dlq', 'dst')
    t.equal(await h.catalog.getPlacement({ project: h.project, queue: 'jobs' }), src ?? 'default')

    const id = await poison(t, h, 'jobs')
    const moved = await waitFor(async () => {
      const b = await bodies(h, 'dlq')
      return b.length > 0 ? b : null
    }, { what: 'the message in the DLQ, read through the API' })
    t.same(moved, [{ poison: id }], 'exactly the poison message, once')
    const msg = (await h.req('GET', '/v2/queues/dlq/messages?echo=true')).json.messages[0]
    t.equal(msg.ttl, 900, '_dead_letter_queue_messages_ttl applies')
    t.same(await bodies(h, 'jobs'), [], 'gone from the source')
    t.equal((await h.req('GET', '/v2/queues/jobs/stats')).json.messages.total, 0)
    // It lives in the DLQ pool's Redis, not in a shadow queue of the source's store.
    const inDst = await queuesWithMessages(redisClient(t, rd.port, 1))
    t.ok(inDst.has(`${h.project}/dlq`), 'stored in the DLQ pool')
    t.equal(h.storage.deadLetters.moved, 1, 'one cross-pool move')
  })

  t.test(`${label.split(' ')[0]} source on a non-default pool, DLQ without a placement`, async (t) => {
    const h = await startPoolHarness(t)
    const rs = srcStore === 'redis' ? await startRedis(t, { appendfsync: 'everysec' }) : undefined
    await addPool(t, h, 'side', rs === undefined ? 'sqlite:side.sqlite' : `${rs.url}?durability=fast`)
    await createOn(h, 'jobs', 'side', DLQ_META)
    const dlq: QueueRef = { project: h.project, queue: 'dlq' }
    t.equal(await h.catalog.getPlacement(dlq), null, 'the DLQ has no placement yet')

    const id = await poison(t, h, 'jobs')
    t.equal(await h.catalog.getPlacement(dlq), 'side', "the DLQ is placed on the source's pool")
    t.same(await bodies(h, 'dlq'), [{ poison: id }], 'readable through the API (moved in-pool)')
    t.same(await bodies(h, 'jobs'), [], 'gone from the source')
    t.equal(h.storage.deadLetters.moved, 0, 'no cross-pool copy was needed')
    const queues = (await h.req('GET', '/v2/queues')).json.queues.map((q: { name: string }) => q.name)
    t.ok(queues.includes('dlq'), 'the DLQ is listed')
  })
}

t.test("the DLQ's pool is down: the message waits in the source, then lands once", async (t) => {
  const h = await startPoolHarness(t)
  const rd = await startRedis(t, { appendfsync: 'everysec' })
  await addPool(t, h, 'dst', `${rd.url}?durability=fast`)
  await createOn(h, 'jobs', null, DLQ_META)
  await createOn(h, 'dlq', 'dst')

  await rd.stop()
  const id = await poison(t, h, 'jobs')
  await waitFor(() => h.storage.deadLetters.failures > 0, { what: 'a failed move' })
  // Claims keep observing it and keep failing; the message is neither handed out nor lost.
  t.equal(await claimAndRelease(h, 'jobs'), 204, 'not claimable while due')
  t.same(await bodies(h, 'jobs'), [{ poison: id }], 'still in the source')
  t.equal((await h.req('GET', '/v2/queues/dlq/messages')).status, 503, 'the DLQ answers 503 while its pool is down')

  await startRedis(t, { appendfsync: 'everysec', dir: rd.dir, port: rd.port })
  const moved = await waitFor(
    async () => {
      await claimAndRelease(h, 'jobs') // whoever observes the due message retries the move
      const r = await h.req('GET', '/v2/queues/dlq/messages?echo=true')
      return r.status === 200 && r.json.messages.length > 0 ? r.json.messages : null
    },
    { what: 'the message in the DLQ once its pool is back', timeoutMs: 20_000, intervalMs: 200 },
  )
  t.same(
    moved.map((m: { body: unknown }) => m.body),
    [{ poison: id }],
    'landed once',
  )
  t.same(await bodies(h, 'jobs'), [], 'gone from the source')
})

t.test('Redis: a worker with no (or a stale) memory of the DLQ still dead-letters', async (t) => {
  const r = await startRedis(t, { appendfsync: 'everysec' })
  const open = async (): Promise<RedisDriver> => {
    const d = await RedisDriver.open(parseRedisUri(r.url, 'fast'))
    t.teardown(() => d.close())
    return d
  }
  const project = `p-${randomUUID()}`
  const src: QueueRef = { project, queue: 'jobs' }
  const opts = { ttl: 60, grace: 60, limit: 10 }
  const before = await open()
  await before.createQueue(src, { _max_claim_count: 1, _dead_letter_queue: 'dlq1' })
  await before.postMessages(src, [{ body: '"a"', ttl: 600 }, { body: '"b"', ttl: 600 }], {
    clientId: randomUUID(),
    defaultTtl: 600,
    postBytes: 0,
    queuePolicy: false,
  })
  const first = await before.createClaim(src, { ...opts, limit: 1 })
  t.same(first?.messages.map((m) => m.body), ['"a"'])
  await before.releaseClaim(src, first!.id)

  // A restarted worker: a new driver that never wrote this queue's metadata.
  const after = await open()
  const second = await after.createClaim(src, opts)
  t.same(second?.messages.map((m) => m.body), ['"b"'], '"a" is moved, not claimed; "b" (claimed 0 times) is')
  t.same((await after.listMessages({ project, queue: 'dlq1' }, { limit: 10, clientId: randomUUID(), echo: true, includeClaimed: true })).items.map((m) => m.body), ['"a"'])
  await after.releaseClaim(src, second!.id)

  // Another worker changes the DLQ: the first one's memory is stale.
  await after.setQueueMetadata(src, { _max_claim_count: 1, _dead_letter_queue: 'dlq2' })
  t.equal(await before.createClaim(src, opts), null, 'moved to the new DLQ')
  t.same((await before.listMessages({ project, queue: 'dlq2' }, { limit: 10, clientId: randomUUID(), echo: true, includeClaimed: true })).items.map((m) => m.body), ['"b"'])
  t.equal((await before.stats(src)).total, 0)
})

t.test('whole service: dead-lettering over RPC across a Redis worker restart', async (t) => {
  const redis = await startRedis(t, { appendfsync: 'everysec' })
  const m = await startMissive(t, { env: { MISSIVE_ADMIN_TOKEN: ADMIN_TOKEN, MISSIVE_DURABILITY: 'fast' } })
  const c = client(m.baseUrl)
  const admin = (method: string, path: string, body?: unknown) => c.req(method, path, { body, admin: true })
  t.equal((await admin('PUT', '/v2/pools/r1', { weight: 1, uri: `${redis.url}?durability=fast` })).status, 201)
  t.equal((await admin('PUT', '/v2/flavors/r1', { pool_list: ['r1'] })).status, 201)
  await waitFor(async () => (await admin('GET', '/v2/admin/pools/r1/stats')).json?.storage?.reachable === true, {
    what: 'pool r1 serving',
    timeoutMs: 20_000,
  })
  // jobs → DLQ on the default (SQLite) pool; jobs2 → DLQ with no placement yet.
  t.equal((await c.req('PUT', '/v2/queues/jobs', { body: { _flavor: 'r1', _max_claim_count: 1, _dead_letter_queue: 'dlq' } })).status, 201)
  t.equal((await c.req('PUT', '/v2/queues/dlq')).status, 201)
  t.equal((await c.req('PUT', '/v2/queues/jobs2', { body: { _flavor: 'r1', _max_claim_count: 1, _dead_letter_queue: 'dlq2' } })).status, 201)
  const claimOnce = async (q: string): Promise<number> => {
    const r = await c.req('POST', `/v2/queues/${q}/claims`, { body: { ttl: 60, grace: 60 } })
    if (r.status === 201) {
      const loc = r.headers.get('location')!
      await c.req('DELETE', loc.slice(loc.indexOf('/v2/')))
    }
    return r.status
  }
  for (const q of ['jobs', 'jobs2']) {
    t.equal((await c.req('POST', `/v2/queues/${q}/messages`, { body: { messages: [{ body: q, ttl: 3600 }] } })).status, 201)
    t.equal(await claimOnce(q), 201, `${q}: claimed once`)
  }

  // The pool's worker restarts: it remembers no queue's dead-letter queue.
  const victim = (await poolWorkerPids(m.pid, m.dataDir)).get('r1')![0]!
  process.kill(victim, 'SIGKILL')
  await waitFor(async () => (await poolWorkerPids(m.pid, m.dataDir)).get('r1')?.[0] !== victim, { what: 'a new r1 worker', timeoutMs: 20_000 })
  await waitFor(async () => (await c.req('GET', '/v2/queues/jobs/stats')).status === 200, { what: 'r1 serving again', timeoutMs: 20_000 })

  t.equal(await claimOnce('jobs'), 204, 'jobs: due, not claimed')
  t.equal(await claimOnce('jobs2'), 204, 'jobs2: due, not claimed')
  const listed = async (q: string): Promise<unknown[]> => {
    const r = await c.req('GET', `/v2/queues/${q}/messages?echo=true&include_claimed=true`)
    return r.status === 200 ? ((r.json?.messages ?? []) as { body: unknown }[]).map((x) => x.body) : []
  }
  t.same(await waitFor(async () => ((await listed('dlq')).length > 0 ? listed('dlq') : null), { what: 'jobs → dlq (another pool)' }), ['jobs'])
  t.same(await listed('dlq2'), ['jobs2'], 'jobs2 → dlq2, placed on r1 and moved there by the restarted worker')
  t.same(await listed('jobs'), [], 'jobs emptied')
  t.same(await listed('jobs2'), [], 'jobs2 emptied')
  const inR1 = await queuesWithMessages(redisClient(t, redis.port))
  t.ok(inR1.has(`${c.project}/dlq2`) && !inR1.has(`${c.project}/dlq`), 'dlq2 lives in r1, dlq does not')
})
