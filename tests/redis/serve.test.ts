/**
 * `missive serve` on a Redis default pool, from the build: MISSIVE_DEFAULT_POOL=redis://… makes
 * the default pool a Redis one, messages go through the whole path (over TCP, and over a Unix
 * socket in Zaqar's `redis:/path` form), and a server that cannot keep the pool's durability
 * promise stops the service from starting, with the reason printed.
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { startMissive, startRedis, tempDir, waitFor } from '../helpers/index.js'
import { rawClient } from './util.js'
import { resolveWorkers } from '../../shared/auto-workers.js'

t.test('MISSIVE_DEFAULT_POOL=redis://… serves messages from Redis', async (t) => {
  const server = await startRedis(t, { appendfsync: 'always' })
  const m = await startMissive(t, { env: { MISSIVE_DEFAULT_POOL: `${server.url}?durability=durable` } })
  const headers = { 'Client-ID': randomUUID(), 'X-Project-ID': 'serve-test', 'Content-Type': 'application/json' }
  const post = await fetch(`${m.baseUrl}/v2/queues/orders/messages`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ messages: [{ body: { n: 1 }, ttl: 300 }, { body: { n: 2 }, ttl: 300 }] }),
  })
  t.equal(post.status, 201, await post.clone().text())
  const claim = await fetch(`${m.baseUrl}/v2/queues/orders/claims`, { method: 'POST', headers, body: JSON.stringify({ ttl: 60, grace: 60 }) })
  t.equal(claim.status, 201)
  const claimed = (await claim.json()) as { messages: { body: unknown }[] }
  t.same(claimed.messages.map((x) => x.body), [{ n: 1 }, { n: 2 }])
  const redis = rawClient(t, server)
  t.same(await redis.zrange('missive:queues:{serve-test}', 0, -1), ['orders'], 'the queue lives in Redis')
  // `workers` unset is "auto": on this host's CPUs, a worker process or none (shared/auto-workers.ts).
  const auto = resolveWorkers('auto', server.url)
  t.equal((await m.children()).workers.length, auto.workers, `workers: ${auto.why}`)
})

t.test('a durable Redis pool on a server without AOF: missive refuses to start', async (t) => {
  const server = await startRedis(t)
  await t.rejects(startMissive(t, { env: { MISSIVE_DEFAULT_POOL: server.url }, timeoutMs: 15_000 }), {
    message: /exited during start-up[\s\S]*cannot keep the durability=durable promise: appendonly is "no"/,
  })
})

t.test("MISSIVE_DEFAULT_POOL=redis:/path (Zaqar's Unix-socket form): the pool's connections and the proxy's wake-ups use the socket", async (t) => {
  const sock = `${await tempDir(t, 'missive-serve-unix-')}/redis.sock`
  const server = await startRedis(t, { appendfsync: 'always', args: ['--unixsocket', sock, '--unixsocketperm', '700'] })
  const m = await startMissive(t, { env: { MISSIVE_DEFAULT_POOL: `redis:${sock}?durability=durable` } })
  const headers = { 'Client-ID': randomUUID(), 'X-Project-ID': 'serve-unix', 'Content-Type': 'application/json' }
  const post = await fetch(`${m.baseUrl}/v2/queues/orders/messages`, { method: 'POST', headers, body: JSON.stringify({ messages: [{ body: { n: 1 } }] }) })
  t.equal(post.status, 201, await post.clone().text())
  const got = await fetch(`${m.baseUrl}/v2/queues/orders/messages?echo=true`, { headers })
  t.same(((await got.json()) as { messages: { body: unknown }[] }).messages.map((x) => x.body), [{ n: 1 }])
  const redis = rawClient(t, server)
  t.same(await redis.zrange('missive:queues:{serve-unix}', 0, -1), ['orders'], 'the queue lives in that Redis')
  // Every client came through the socket (no TCP address but this test's own), the proxy's
  // subscriber for long-poll and push wake-ups among them.
  const clients = async (): Promise<string[]> => String(await redis.client('LIST')).trim().split('\n')
  let viaSocket: string[] = []
  await waitFor(
    async () => {
      viaSocket = (await clients()).filter((c) => / (l)?addr=\/.*redis\.sock/.test(c))
      return viaSocket.some((c) => / cmd=(p?subscribe|ssubscribe)\b/.test(c) || / sub=[1-9]/.test(c))
    },
    { what: 'a subscriber on the socket' },
  )
  t.ok(viaSocket.length >= 2, `the driver's and the subscriber (${viaSocket.length} connections on the socket)`)
  t.equal((await clients()).filter((c) => / laddr=127\.0\.0\.1:/.test(c)).length, 1, 'only this test reaches it over TCP')
})

