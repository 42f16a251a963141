/**
 * Pools served inside the proxy (`workers: 0`, proxy/embedded.ts), through `missive serve` from
 * the build: the default pool on SQLite and on Redis serves the whole path with no worker process,
 * survives a kill -9 of the whole tree with every acknowledged message, a pool the driver refuses
 * stops the service with the reason printed, and a pool added at run time with `workers: 0` is
 * served without a worker too.
 */
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { startMissive, startRedis, waitFor, type MissiveProcess } from '../helpers/index.js'
import { ADMIN_TOKEN, client } from '../pools/util.js'
import { rawClient } from '../redis/util.js'

const headers = (project: string): Record<string, string> => ({ 'Client-ID': randomUUID(), 'X-Project-ID': project, 'Content-Type': 'application/json' })

/** Posts, claims and bulk-deletes through HTTP; returns the bodies the claim got. */
async function roundTrip(t: Test, m: MissiveProcess, project: string, queue: string): Promise<unknown[]> {
  const h = headers(project)
  const base = `${m.baseUrl}/v2/queues/${queue}`
  const post = await fetch(`${base}/messages`, { method: 'POST', headers: h, body: JSON.stringify({ messages: [{ body: { n: 1 }, ttl: 300 }, { body: { n: 2 }, ttl: 300 }] }) })
  t.equal(post.status, 201, await post.clone().text())
  const claim = await fetch(`${base}/claims?limit=5`, { method: 'POST', headers: h, body: JSON.stringify({ ttl: 60, grace: 60 }) })
  t.equal(claim.status, 201)
  const claimed = (await claim.json()) as { messages: { id: string; body: unknown; href: string }[] }
  const claimId = new URL(claimed.messages[0]!.href, m.baseUrl).searchParams.get('claim_id')
  const del = await fetch(`${base}/messages?ids=${claimed.messages.map((x) => x.id).join(',')}&claim_ids=${claimId}`, { method: 'DELETE', headers: h })
  t.equal(del.status, 204)
  const stats = (await (await fetch(`${base}/stats`, { headers: h })).json()) as { messages: { total: number } }
  t.equal(stats.messages.total, 0, 'the bulk delete removed what the claim took')
  return claimed.messages.map((x) => x.body)
}

async function workerProcesses(m: MissiveProcess): Promise<number[]> {
  return (await m.children()).workers
}

t.test('MISSIVE_WORKERS=0: the embedded SQLite default pool runs in the proxy', async (t) => {
  const m = await startMissive(t, { env: { MISSIVE_WORKERS: '0' } })
  t.same(await roundTrip(t, m, 'emb', 'q'), [{ n: 1 }, { n: 2 }])
  const kids = await m.children()
  t.ok(kids.proxy, 'a proxy runs')
  t.same(kids.workers, [], 'no worker process')
})

t.test('MISSIVE_WORKERS=0 on a Redis default pool: served from Redis, acknowledged messages survive kill -9', async (t) => {
  const server = await startRedis(t, { appendfsync: 'always' })
  const env = { MISSIVE_WORKERS: '0', MISSIVE_DEFAULT_POOL: `${server.url}?durability=durable` }
  const m = await startMissive(t, { env })
  t.same(await roundTrip(t, m, 'emb', 'orders'), [{ n: 1 }, { n: 2 }])
  t.same(await workerProcesses(m), [], 'no worker process')
  const redis = rawClient(t, server)
  t.same(await redis.zrange('missive:queues:{emb}', 0, -1), ['orders'], 'the queue lives in Redis')

  // Every 201 is in Redis before the reply: kill the whole tree, restart, read them back.
  const h = headers('emb')
  const posted: string[] = []
  for (let i = 0; i < 20; i++) {
    const r = await fetch(`${m.baseUrl}/v2/queues/kept/messages`, { method: 'POST', headers: h, body: JSON.stringify({ messages: [{ body: { i }, ttl: 300 }] }) })
    t.equal(r.status, 201)
    posted.push(((await r.json()) as { resources: string[] }).resources[0]!.split('/').pop()!)
  }
  await m.kill9Tree()
  const again = await startMissive(t, { env, dataDir: m.dataDir })
  const list = await fetch(`${again.baseUrl}/v2/queues/kept/messages?limit=20&echo=true`, { headers: h })
  t.equal(list.status, 200)
  const ids = ((await list.json()) as { messages: { id: string }[] }).messages.map((x) => x.id)
  t.same(ids, posted, 'every acknowledged message is there, in order')
})

t.test('MISSIVE_WORKERS=0 with a durable Redis pool on a server without AOF: missive refuses to start', async (t) => {
  const server = await startRedis(t)
  await t.rejects(startMissive(t, { env: { MISSIVE_WORKERS: '0', MISSIVE_DEFAULT_POOL: server.url }, timeoutMs: 15_000 }), {
    message: /exited during start-up[\s\S]*missive proxy: cannot open pool redis:[\s\S]*cannot keep the durability=durable promise: appendonly is "no"/,
  })
})

t.test('a pool added with options.workers 0 is served inside the proxy', async (t) => {
  const server = await startRedis(t, { appendfsync: 'everysec' })
  const m = await startMissive(t, { env: { MISSIVE_ADMIN_TOKEN: ADMIN_TOKEN, MISSIVE_DURABILITY: 'fast' } })
  const c = client(m.baseUrl)
  const admin = (method: string, path: string, body?: unknown) => c.req(method, path, { body, admin: true })
  t.equal((await admin('PUT', '/v2/pools/inproc', { weight: 1, uri: `${server.url}?durability=fast`, options: { workers: 0 } })).status, 201)
  // The default pool takes no new queue: the next one is placed on `inproc`.
  t.equal((await admin('PATCH', '/v2/pools/default', { weight: 0 })).status, 200)
  await waitFor(async () => (await admin('GET', '/v2/admin/pools/inproc/stats')).json?.storage?.reachable === true, {
    what: 'the new pool serving',
    timeoutMs: 15_000,
  })
  t.same(await roundTrip(t, m, 'emb', 'placed'), [{ n: 1 }, { n: 2 }])
  const redis = rawClient(t, server)
  t.same(await redis.zrange('missive:queues:{emb}', 0, -1), ['placed'], 'the queue lives in the new pool')
  t.equal((await m.children()).workers.length, 1, "only the default pool's worker runs")
})
