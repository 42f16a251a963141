/**
 * A Sentinel pool through a failover (docs/ha.md, "Sentinel pools"): one master, two replicas,
 * three Sentinels on loopback, Missive's default pool `redis+sentinel://…/<master>`. Producers and
 * consumers run; the master is killed with SIGKILL; the Sentinels promote a replica and Missive
 * follows the new master on its own. Then:
 * - `durability=durable&wait=1` (AOF `appendfsync always` everywhere, WAIT 1 before each 201):
 *   every message whose post was acknowledged is there exactly once — still in the queue, or
 *   deleted by a consumer whose delete was acknowledged (never both, never twice);
 * - `durability=fast`: the same run, and the acknowledged messages lost, if any, are counted, not
 *   asserted (up to about a second of writes may go: docs/ha.md).
 * The unavailability window (the longest time without a successful post around the kill) is
 * printed for each mode.
 */
import t from 'tap'
import { startMissive, waitFor } from '../helpers/index.js'
import type { HttpResp } from '../helpers/http.js'
import { ADMIN_TOKEN, client } from '../pools/util.js'
import { sentinelClient, startSentinelGroup } from './topology.js'

t.setTimeout(300_000)

const PRODUCERS = 4
const CONSUMERS = 2
/** Acknowledged posts before the kill, and after the service is back. */
const BEFORE = 150
const AFTER = 150

/** Load shaping, not synchronisation: a client honouring Retry-After would wait longer. */
const backoff = (): Promise<void> => new Promise((r) => setTimeout(r, 20))

for (const mode of ['durable', 'fast'] as const) {
  t.test(`${mode}: kill -9 the master under load; Missive follows the new master`, async (t) => {
    const group = await startSentinelGroup(t, { appendfsync: mode === 'durable' ? 'always' : 'everysec' })
    const query = mode === 'durable' ? 'durability=durable&wait=1' : 'durability=fast'
    const m = await startMissive(t, {
      env: { MISSIVE_DEFAULT_POOL: group.uri(query), MISSIVE_DURABILITY: mode, MISSIVE_ADMIN_TOKEN: ADMIN_TOKEN },
      timeoutMs: 60_000,
    })
    const c = client(m.baseUrl)
    const q = '/v2/queues/work'

    /** Acknowledged posts: body key → message id, with when they were answered. */
    const acked = new Map<string, string>()
    const okTimes: number[] = []
    /** Deletes answered 204, and deletes whose outcome is unknown (503 or no answer). */
    const consumed = new Set<string>()
    const uncertain = new Set<string>()
    let failures = 0
    let killedAt = Infinity
    let stop = false

    const producer = async (p: number): Promise<void> => {
      for (let seq = 0; !stop; seq++) {
        const key = `${p}-${seq}`
        let r: HttpResp | undefined
        try {
          r = await c.req('POST', `${q}/messages`, { body: { messages: [{ body: { key }, ttl: 3600 }] } })
        } catch {
          r = undefined
        }
        if (r?.status === 201) {
          const href = (r.json.resources as string[])[0]!
          acked.set(key, href.slice(href.lastIndexOf('/') + 1))
          okTimes.push(performance.now())
        } else {
          if (r !== undefined && r.status !== 503) t.fail(`post: ${r.status} ${r.text.slice(0, 200)}`)
          failures++
          await backoff()
        }
      }
    }
    const consumer = async (): Promise<void> => {
      while (!stop) {
        let r: HttpResp | undefined
        try {
          r = await c.req('POST', `${q}/claims?limit=5`, { body: { ttl: 60, grace: 60 } })
        } catch {
          r = undefined
        }
        if (r?.status !== 201) {
          if (r !== undefined && r.status !== 204 && r.status !== 503) t.fail(`claim: ${r.status} ${r.text.slice(0, 200)}`)
          await backoff()
          continue
        }
        for (const msg of r.json.messages as { id: string; href: string }[]) {
          let d: HttpResp | undefined
          try {
            d = await c.req('DELETE', msg.href)
          } catch {
            d = undefined
          }
          if (d?.status === 204) consumed.add(msg.id)
          else uncertain.add(msg.id)
        }
      }
    }
    const running = [...Array.from({ length: PRODUCERS }, (_, p) => producer(p)), ...Array.from({ length: CONSUMERS }, () => consumer())]

    await waitFor(() => acked.size >= BEFORE, { what: `${BEFORE} acknowledged posts`, timeoutMs: 60_000 })
    const oldMaster = group.master.port
    killedAt = performance.now()
    await group.master.kill9()
    // Served again, and by the new master.
    await waitFor(async () => (await group.masterPort()) !== oldMaster, { what: 'the Sentinels to promote a replica', timeoutMs: 60_000 })
    const ackedAtKill = acked.size
    await waitFor(() => acked.size >= ackedAtKill + AFTER, { what: `${AFTER} acknowledged posts after the failover`, timeoutMs: 90_000 })
    stop = true
    await Promise.all(running)

    const newMaster = await group.masterPort()
    t.ok(group.replicas.some((r) => r.port === newMaster), `a replica was promoted (${oldMaster} → ${newMaster})`)

    // The longest stretch without an acknowledged post, around the kill.
    okTimes.sort((a, b) => a - b)
    let window = 0
    for (let i = 1; i < okTimes.length; i++) {
      if (okTimes[i]! > killedAt && okTimes[i - 1]! < killedAt + 60_000) window = Math.max(window, okTimes[i]! - okTimes[i - 1]!)
    }
    t.comment(`${mode}: unavailability window ${Math.round(window)} ms (longest gap between acknowledged posts after the kill); ${failures} refused posts`)

    // Every message in the queue now.
    const listed: { id: string; key: string }[] = []
    let path = `${q}/messages?echo=true&include_claimed=true&limit=20`
    for (let pages = 0; pages < 10_000; pages++) {
      const r = await c.req('GET', path)
      t.equal(r.status, 200, 'listing after the failover')
      const msgs = (r.json?.messages ?? []) as { id: string; body: { key: string } }[]
      if (msgs.length === 0) break
      for (const msg of msgs) listed.push({ id: msg.id, key: msg.body.key })
      path = (r.json.links as { rel: string; href: string }[]).find((l) => l.rel === 'next')!.href
    }
    const listedIds = new Set(listed.map((x) => x.id))
    t.equal(listedIds.size, listed.length, 'no message listed twice')
    t.equal(new Set(listed.map((x) => x.key)).size, listed.length, 'no post stored twice')
    t.same([...consumed].filter((id) => listedIds.has(id)), [], 'no acknowledged delete undone')
    const lost = [...acked.values()].filter((id) => !listedIds.has(id) && !consumed.has(id) && !uncertain.has(id))
    t.comment(`${mode}: ${acked.size} posts acknowledged, ${consumed.size} deletes acknowledged, ${listed.length} left, ${lost.length} acknowledged messages lost`)
    if (mode === 'durable') t.same(lost, [], 'durable + wait=1: no acknowledged message lost')

    // Missive saw the failover: health names the new master's role and counts it. The worker's
    // driver notes the server at every reconnection; the proxy's next pool check (every
    // `poolCheckMs`) carries the count: wait for that check, not for a sample to catch it.
    let last: unknown
    const health = (await waitFor(
      async () => {
        const h = await c.req('GET', '/v2/health?detailed=true', { admin: true })
        last = h.json?.default
        return h.json?.default?.failovers >= 1 ? h : undefined
      },
      { timeoutMs: 15_000, what: 'health to count the failover' },
    ).catch((err: unknown): never => {
      throw new Error(`${(err as Error).message}; last health: ${JSON.stringify(last)}`)
    }))!
    t.match(health.json.default, { storage_reachable: true, breaker: 'closed', role: 'master' }, 'health: the pool serves from a master')
    t.ok(health.json.default.failovers >= 1, `health: the failover counted (${health.json.default.failovers})`)
    t.type(health.json.default.last_failover, 'string')
    const metrics = await (await fetch(`${m.baseUrl}/metrics`)).text()
    t.match(metrics, /^missive_pool_failovers_total\{[^}]*pool="default"[^}]*\} [1-9]/m, 'missive_pool_failovers_total counted it')
    // The new master has the data: it is the one Missive writes to now.
    const direct = sentinelClient(t, newMaster)
    t.match(await direct.info('replication'), /^role:master/m)
  })
}

t.test('a failover onto a replica that cannot keep the durable promise: 503 until it is fixed', async (t) => {
  // The first replica is the one promoted (the second never is), and it fsyncs only every second.
  const group = await startSentinelGroup(t, {
    appendfsync: 'always',
    replicaOptions: [{ appendfsync: 'everysec', priority: 10 }, { priority: 0 }],
  })
  const m = await startMissive(t, {
    env: { MISSIVE_DEFAULT_POOL: group.uri('durability=durable'), MISSIVE_DURABILITY: 'durable', MISSIVE_ADMIN_TOKEN: ADMIN_TOKEN },
    timeoutMs: 60_000,
  })
  const c = client(m.baseUrl)
  const post = (): Promise<HttpResp> => c.req('POST', '/v2/queues/strict/messages', { body: { messages: [{ body: 'x' }] } })
  t.equal((await post()).status, 201, 'served by the master')

  await group.master.kill9()
  const promoted = group.replicas[0]!
  await waitFor(async () => (await group.masterPort()) === promoted.port, { what: 'the first replica promoted', timeoutMs: 60_000 })
  let last: unknown
  const reason = await waitFor(
    async () => {
      const h = await c.req('GET', '/v2/health?detailed=true', { admin: true })
      const { operation_status: _, ...facts } = h.json?.default ?? {}
      last = facts
      const reason = h.json?.default?.breaker_reason as string | undefined
      return reason !== undefined && /appendfsync is "everysec"/.test(reason) ? reason : null
    },
    { what: 'health to say why the pool is refused', timeoutMs: 30_000 },
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; last health: ${JSON.stringify(last)}`)
  })
  t.match(reason, /cannot keep the durability=durable promise/, `health says why: ${reason}`)
  const refused = await post()
  t.equal(refused.status, 503, 'posts are refused rather than acknowledged with less durability')
  t.ok(Number(refused.headers.get('retry-after')) >= 1, 'with Retry-After')

  // The operator fixes the new master: served again, without restarting anything.
  await sentinelClient(t, promoted.port).config('SET', 'appendfsync', 'always')
  await waitFor(async () => (await post()).status === 201, { what: 'posts served again', timeoutMs: 30_000 })
  const h = await c.req('GET', '/v2/health?detailed=true', { admin: true })
  t.match(h.json.default, { breaker: 'closed', role: 'master' })
})
