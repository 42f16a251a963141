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
import { accountFor, startTraffic, unavailability } from './traffic.js'

t.setTimeout(300_000)

const PRODUCERS = 4
const CONSUMERS = 2
/** Acknowledged posts before the kill, and after the service is back. */
const BEFORE = 150
const AFTER = 150

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

    const traffic = startTraffic(t, c, q, { producers: PRODUCERS, consumers: CONSUMERS })
    const { acked, consumed } = traffic

    await waitFor(() => acked.size >= BEFORE, { what: `${BEFORE} acknowledged posts`, timeoutMs: 60_000 })
    const oldMaster = group.master.port
    const killedAt = performance.now()
    await group.master.kill9()
    // Served again, and by the new master.
    await waitFor(async () => (await group.masterPort()) !== oldMaster, { what: 'the Sentinels to promote a replica', timeoutMs: 60_000 })
    const switchedMs = Math.round(performance.now() - killedAt)
    const ackedAtKill = acked.size
    await waitFor(() => acked.size >= ackedAtKill + AFTER, { what: `${AFTER} acknowledged posts after the failover`, timeoutMs: 90_000 })
    await traffic.stop()

    const newMaster = await group.masterPort()
    t.ok(group.replicas.some((r) => r.port === newMaster), `a replica was promoted (${oldMaster} → ${newMaster})`)

    // The longest stretch without an acknowledged post, around the kill.
    const window = unavailability(traffic, killedAt)
    t.comment(
      `${mode}: unavailability window ${Math.round(window)} ms (longest gap between acknowledged posts after the kill; the Sentinels named the new master ${switchedMs} ms after it); ${traffic.failures()} refused posts`,
    )

    // Every message in the queue now.
    const { lost, left } = await accountFor(t, c, q, traffic)
    t.comment(`${mode}: ${acked.size} posts acknowledged, ${consumed.size} deletes acknowledged, ${left} left, ${lost.length} acknowledged messages lost`)
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
