/**
 * A pool whose worker count changes at run time (`PATCH /v2/pools/<name>` with
 * `options.workers`) gets a new set of workers from the supervisor (exactly one: the old set is
 * stopped, one new set started) and is re-opened by every proxy: the new drivers are opened before the old ones
 * close (proxy/pool-set.ts), so closing the old set must leave the new one alone. Checked through
 * `missive serve` from the build on a Redis pool (the supervisor starts and stops its workers):
 * 1 worker → 2 workers → served inside the proxy (0) → 1 worker, a full post / claim / delete
 * round trip on the same queue after each change, and every message posted before a change is
 * still there after it, and the pool's circuit breakers are still the ones `/metrics` reads.
 */
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { startMissive, startRedis, waitFor, type MissiveProcess } from '../helpers/index.js'
import { ADMIN_TOKEN, client, poolWorkerPids } from './util.js'

t.setTimeout(180_000)

const h = { 'Client-ID': randomUUID(), 'X-Project-ID': 'reopen', 'Content-Type': 'application/json' }

/** Posts two messages, claims them, deletes them with the claim; true when every step succeeded. */
async function roundTrip(m: MissiveProcess, queue: string): Promise<boolean> {
  const base = `${m.baseUrl}/v2/queues/${queue}`
  const post = await fetch(`${base}/messages`, { method: 'POST', headers: h, body: JSON.stringify({ messages: [{ body: 1 }, { body: 2 }] }) })
  if (post.status !== 201) return false
  const claim = await fetch(`${base}/claims?limit=2`, { method: 'POST', headers: h, body: JSON.stringify({ ttl: 60, grace: 60 }) })
  if (claim.status !== 201) return false
  const got = (await claim.json()) as { messages: { id: string; href: string }[] }
  const claimId = new URL(got.messages[0]!.href, m.baseUrl).searchParams.get('claim_id')
  const del = await fetch(`${base}/messages?ids=${got.messages.map((x) => x.id).join(',')}&claim_ids=${claimId}`, { method: 'DELETE', headers: h })
  return del.status === 204 && got.messages.length === 2
}

async function keptIds(m: MissiveProcess, queue: string): Promise<string[]> {
  const r = await fetch(`${m.baseUrl}/v2/queues/${queue}/messages?echo=true&limit=20`, { headers: h })
  if (r.status === 204) return []
  const doc = (await r.json()) as { messages?: { id: string }[] }
  if (!doc.messages) throw new Error(`listing answered ${r.status} ${JSON.stringify(doc)}`)
  return doc.messages.map((x) => x.id)
}

t.test("changing a pool's worker count keeps it serving", async (t: Test) => {
  const server = await startRedis(t, { appendfsync: 'everysec' })
  const m = await startMissive(t, { env: { MISSIVE_ADMIN_TOKEN: ADMIN_TOKEN, MISSIVE_DURABILITY: 'fast' } })
  const c = client(m.baseUrl)
  const admin = (method: string, path: string, body?: unknown) => c.req(method, path, { body, admin: true })
  const uri = `${server.url}?durability=fast`
  t.equal((await admin('PUT', '/v2/pools/r', { weight: 1, uri, options: { workers: 1 } })).status, 201)
  t.equal((await admin('PATCH', '/v2/pools/default', { weight: 0 })).status, 200)
  await waitFor(() => roundTrip(m, 'q'), { what: 'the new pool serving', timeoutMs: 20_000 })

  // Messages that stay in the queue across every change.
  const post = await fetch(`${m.baseUrl}/v2/queues/kept/messages`, { method: 'POST', headers: h, body: JSON.stringify({ messages: [{ body: 'a' }, { body: 'b' }, { body: 'c' }] }) })
  t.equal(post.status, 201)
  const kept = ((await post.json()) as { resources: string[] }).resources.map((r) => r.split('/').pop()!)

  for (const workers of [2, 0, 1]) {
    const before = (await poolWorkerPids(m.pid, m.dataDir)).get('r') ?? []
    t.equal((await admin('PATCH', '/v2/pools/r', { options: { workers } })).status, 200, `workers → ${workers}`)
    // The supervisor replaces the pool's workers: wait until only the new ones listen, so that a
    // success below is not an old worker answering before it stops.
    await waitFor(
      async () => {
        const now = (await poolWorkerPids(m.pid, m.dataDir)).get('r') ?? []
        return now.length === workers && now.every((pid) => !before.includes(pid))
      },
      { what: `the supervisor running ${workers} new workers for the pool`, timeoutMs: 30_000, intervalMs: 100 },
    )
    // Served again once the re-open settled: requests may 503 while the new workers start (each
    // queue hashes to one of them), never for ever.
    await waitFor(() => roundTrip(m, 'q'), { what: `round trips with ${workers} workers`, timeoutMs: 20_000 })
    await waitFor(async () => (await fetch(`${m.baseUrl}/v2/queues/kept/stats`, { headers: h })).status === 200, { what: `queue kept served with ${workers} workers`, timeoutMs: 20_000 })
    // A few more after the first success: the old drivers' close must not have taken the new ones.
    for (let i = 0; i < 5; i++) t.ok(await roundTrip(m, 'q'), `round trip ${i + 1} with ${workers} workers`)
    t.same(await keptIds(m, 'kept'), kept, `the messages posted before are all there with ${workers} workers`)
    // The pool's circuit breakers are the new drivers' (the gauge is read from them at scrape time).
    const page = await (await fetch(`${m.baseUrl}/metrics`)).text()
    t.match(page, /^missive_pool_storage_up\{pool="r",process="proxy"\} 1$/m, `the pool's breakers are watched with ${workers} workers`)
  }
})
