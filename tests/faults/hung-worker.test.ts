/**
 * A hung worker (SIGSTOP: alive, socket open, answering nothing) in a whole service (issue 11,
 * item 10; docs/operations.md, "A hung worker"): the requests it holds and the ones that follow
 * get 503 + Retry-After with a JSON {title, description} once it is taken for hung — not after
 * `rpcTimeoutMs`, set here far beyond the client's own timeout — GET and HEAD /v2/ping both say
 * 503, the supervisor SIGKILLs and restarts it, the service recovers, and no acknowledged message
 * is lost. On the embedded SQLite store and on a Redis pool.
 */
import t from 'tap'
import { alive, startMissive, startRedis, waitFor } from '../helpers/index.js'
import { bad503, randomProject, zaqarClient, type HttpResp } from '../helpers/http.js'

t.setTimeout(180_000)

/** Small values so a hang is seen in about a second; the RPC timeout alone would take minutes. */
const CONFIG = { workerHeartbeatMs: 100, workerHungAfterMs: 1000, rpcTimeoutMs: 300_000 }
/** Every request must be answered within this (a request left to the RPC timeout fails the test). */
const CLIENT_TIMEOUT_MS = 30_000

for (const store of ['sqlite', 'redis'] as const) {
  t.test(`${store}: a stopped worker is failed fast, reported by both pings, and replaced`, async (t) => {
    const env: Record<string, string> = {}
    if (store === 'redis') {
      const r = await startRedis(t, { appendfsync: 'always' })
      env.MISSIVE_DEFAULT_POOL = `${r.url}?durability=durable`
      // A worker process to stop, whatever "auto" would choose on this host's CPUs.
      env.MISSIVE_WORKERS = '1'
    }
    const m = await startMissive(t, { config: CONFIG, env })
    const c = zaqarClient(m.baseUrl, { project: randomProject('hung'), timeoutMs: CLIENT_TIMEOUT_MS })
    const q = '/v2/queues/work'

    // Acknowledged before the hang: every one of these must survive it.
    const acked: string[] = []
    for (let i = 0; i < 5; i++) {
      const r = await c.req('POST', `${q}/messages`, { body: { messages: Array.from({ length: 4 }, (_, n) => ({ body: { i, n } })) } })
      t.equal(r.status, 201, `post ${i}`)
      acked.push(...(r.json.resources as string[]).map((h) => h.slice(h.lastIndexOf('/') + 1)))
    }
    t.equal((await c.req('GET', '/v2/ping')).status, 204, 'GET ping healthy before')
    t.equal((await c.req('HEAD', '/v2/ping')).status, 204, 'HEAD ping healthy before')

    const { workers } = await m.children()
    t.equal(workers.length, 1, 'one worker')
    const stopped = workers[0]!
    process.kill(stopped, 'SIGSTOP')
    t.teardown(() => {
      if (alive(stopped)) process.kill(stopped, 'SIGCONT')
    })

    // Sent to the stopped worker (pings included): held until it is taken for hung, then 503.
    const [pings, held] = await Promise.all([
      Promise.all([c.req('GET', '/v2/ping'), c.req('HEAD', '/v2/ping')]),
      Promise.all([
        c.req('GET', `${q}/stats`),
        c.req('POST', `${q}/messages`, { body: { messages: [{ body: 'during' }] } }),
        c.req('POST', `${q}/claims`, { body: { ttl: 60, grace: 60 } }),
        c.req('GET', `${q}/messages?echo=true`),
      ]),
    ])
    t.same(held.map(bad503), [null, null, null, null], 'each held request: 503 + Retry-After + {title, description}')
    t.same(
      pings.map((r) => r.status),
      [503, 503],
      'GET and HEAD /v2/ping both report the outage',
    )
    t.ok(pings.every((r) => Number(r.headers.get('retry-after')) >= 1), 'with Retry-After')

    // The supervisor notices on its own heartbeat, kills the stopped process and starts another.
    const fresh = await waitFor(
      async () => {
        const now = (await m.children()).workers
        return now.length === 1 && now[0] !== stopped ? now[0]! : null
      },
      { timeoutMs: 20_000, what: 'the supervisor to replace the hung worker' },
    )
    await waitFor(() => !alive(stopped), { timeoutMs: 5000, what: 'the stopped worker to be gone' })
    t.match(m.output(), /does not answer heartbeats/, 'killed as hung by the supervisor')
    t.not(fresh, stopped)

    // Meanwhile every request is answered: 2xx from the new worker, or a proper 503 before it is up.
    const during: HttpResp[] = await Promise.all([c.req('GET', `${q}/stats`), c.req('GET', '/v2/ping'), c.req('HEAD', '/v2/ping')])
    t.same(
      during.filter((r) => r.status !== 200 && r.status !== 204 && (r.status !== 503 || r.headers.get('retry-after') === null)).map((r) => r.status),
      [],
      'no hung or malformed answer while the worker is replaced',
    )

    await waitFor(async () => (await c.req('GET', `${q}/stats`)).status === 200, { timeoutMs: 20_000, what: 'service to recover' })
    t.equal((await c.req('GET', '/v2/ping')).status, 204, 'GET ping healthy after')
    t.equal((await c.req('HEAD', '/v2/ping')).status, 204, 'HEAD ping healthy after')

    const seen = new Set<string>()
    let path = `${q}/messages?echo=true&include_claimed=true&limit=20`
    for (let pages = 0; pages < 10; pages++) {
      const r = await c.req('GET', path)
      t.equal(r.status, 200)
      const msgs = (r.json?.messages ?? []) as { id: string }[]
      if (msgs.length === 0) break
      for (const msg of msgs) seen.add(msg.id)
      path = (r.json.links as { rel: string; href: string }[]).find((l) => l.rel === 'next')!.href
    }
    t.same(
      acked.filter((id) => !seen.has(id)),
      [],
      `all ${acked.length} acknowledged messages are still there`,
    )
    t.equal((await c.req('POST', `${q}/messages`, { body: { messages: [{ body: 'after' }] } })).status, 201, 'posts work again')
  })
}
