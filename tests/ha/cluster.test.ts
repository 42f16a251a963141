/**
 * A Redis Cluster pool through a failover (docs/ha.md, "Redis Cluster pools"): six nodes on
 * loopback (three masters, one replica each, AOF `appendfsync always`, `cluster-node-timeout`
 * 1 s), Missive's default pool `redis+cluster://…?durability=durable&wait=1`. A long-poll is woken
 * by a post through the cluster's pub/sub. Producers and consumers run on a queue; the master that
 * owns the queue's slot is killed with SIGKILL; its replica takes over and Missive follows it
 * (ioredis's Cluster client: MOVED, slot refresh). Then every message whose post was acknowledged
 * is there exactly once — still in the queue, or deleted by a consumer whose delete was
 * acknowledged — and the health report counts the failover. The unavailability window (the
 * longest time without an acknowledged post after the kill) is printed.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { startMissive, waitFor, within } from '../helpers/index.js'
import type { HttpResp } from '../helpers/http.js'
import { startRedisCluster } from '../helpers/redis-cluster.js'
import { ADMIN_TOKEN, client } from '../pools/util.js'
import { accountFor, startTraffic, unavailability } from './traffic.js'

t.setTimeout(240_000)

const PRODUCERS = 4
const CONSUMERS = 2
const BEFORE = 150
const AFTER = 150

/** Load shaping, not synchronisation: a client honouring Retry-After would wait longer. */
const backoff = (): Promise<void> => new Promise((r) => setTimeout(r, 20))

t.test('kill -9 the master of a queue\'s slot under load; Missive follows its replica', async (t) => {
  const cluster = await startRedisCluster(t, { appendfsync: 'always', nodeTimeoutMs: 1000 })
  const m = await startMissive(t, {
    env: { MISSIVE_DEFAULT_POOL: cluster.uri('durability=durable&wait=1'), MISSIVE_DURABILITY: 'durable', MISSIVE_ADMIN_TOKEN: ADMIN_TOKEN },
    timeoutMs: 60_000,
  })
  const c = client(m.baseUrl)

  // A waiting claim is woken by a post through another request: the driver publishes on the
  // cluster, the proxy's subscriber (on any node) hears it. The deadline is far below the wait.
  const waiting = c.req('POST', '/v2/queues/lp/claims?wait=20', { body: { ttl: 60 } })
  // The claim waits (the proxy counts it) before anything is posted.
  await waitFor(async () => /^missive_long_poll_waiting(\{[^}]*\})? 1$/m.test(await (await fetch(`${m.baseUrl}/metrics`)).text()), {
    what: 'the claim to wait',
  })
  t.equal((await c.req('POST', '/v2/queues/lp/messages', { body: { messages: [{ body: 'wake' }] } })).status, 201)
  const woken = await within(waiting, 10_000)
  t.equal(woken?.status, 201, 'the long-poll claim was woken by the post (not by the end of its 20 s wait)')
  t.same((woken?.json.messages as { body: string }[] | undefined)?.map((x) => x.body), ['wake'])

  const q = '/v2/queues/work'
  // The master that owns the queue's slot (every key of the queue carries its hash tag).
  const probe = new Redis({ host: '127.0.0.1', port: cluster.nodes[0]!.port, lazyConnect: false })
  probe.on('error', () => {})
  t.teardown(() => probe.disconnect())
  const slot = (await probe.call('CLUSTER', 'KEYSLOT', `missive:q:{${c.project}/work}`)) as number
  const ranges = (await probe.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][]
  const ownerPort = ranges.find(([lo, hi]) => slot >= lo && slot <= hi)![2][1]
  const owner = cluster.nodes.find((n) => n.port === ownerPort)!

  const traffic = startTraffic(t, c, q, { producers: PRODUCERS, consumers: CONSUMERS })
  const { acked, consumed } = traffic

  await waitFor(() => acked.size >= BEFORE, { what: `${BEFORE} acknowledged posts`, timeoutMs: 60_000 })
  const killedAt = performance.now()
  await owner.kill9()
  await waitFor(async () => (await cluster.masters()).length === 3 && !(await cluster.masters()).includes(owner), {
    what: 'the replica of the killed master to take over',
    timeoutMs: 60_000,
  })
  const promotedAt = performance.now()
  // The promoted replica has no replica of its own (three masters, one replica each): with
  // wait=1 its shard acknowledges nothing (503) until one is back. The killed node restarts, as a
  // supervisor would restart it, and rejoins as the new master's replica.
  await cluster.restart(owner)
  const ackedAtKill = acked.size
  await waitFor(() => acked.size >= ackedAtKill + AFTER, { what: `${AFTER} acknowledged posts after the failover`, timeoutMs: 90_000 })
  await traffic.stop()

  const window = unavailability(traffic, killedAt)
  t.comment(
    `cluster: unavailability window ${Math.round(window)} ms (longest gap between acknowledged posts after the kill; the replica took over ` +
      `${Math.round(promotedAt - killedAt)} ms after the kill, then the killed node rejoined as its replica); ${traffic.failures()} refused posts`,
  )

  const { lost, left } = await accountFor(t, c, q, traffic)
  t.comment(`cluster: ${acked.size} posts acknowledged, ${consumed.size} deletes acknowledged, ${left} left, ${lost.length} acknowledged messages lost`)
  t.same(lost, [], 'durable + wait=1: no acknowledged message lost')

  // Missive saw the failover: the pool's next check carries the driver's count.
  let last: unknown
  const health = (await waitFor(
    async () => {
      const h = await c.req('GET', '/v2/health?detailed=true', { admin: true })
      const { operation_status: _, ...facts } = h.json?.default ?? {}
      last = facts
      return h.json?.default?.failovers >= 1 && h.json?.default?.breaker === 'closed' ? h : undefined
    },
    { timeoutMs: 15_000, what: 'health to count the failover' },
  ).catch((err: unknown): never => {
    throw new Error(`${(err as Error).message}; last health: ${JSON.stringify(last)}`)
  }))!
  t.match(health.json.default, { storage_reachable: true, breaker: 'closed', role: 'master' }, 'health: every slot served by a master')
  t.ok(health.json.default.failovers >= 1, `health: the failover counted (${health.json.default.failovers})`)
  const metrics = await (await fetch(`${m.baseUrl}/metrics`)).text()
  t.match(metrics, /^missive_pool_failovers_total\{[^}]*pool="default"[^}]*\} [1-9]/m, 'missive_pool_failovers_total counted it')
})

t.test("a queue's slot moved to another master under load (MIGRATING/IMPORTING, ASK, MOVED): nothing lost or doubled", async (t) => {
  const cluster = await startRedisCluster(t, { masters: 3, replicasPerMaster: 0, appendfsync: 'always' })
  const m = await startMissive(t, {
    env: { MISSIVE_DEFAULT_POOL: cluster.uri('durability=durable'), MISSIVE_DURABILITY: 'durable', MISSIVE_ADMIN_TOKEN: ADMIN_TOKEN },
    timeoutMs: 60_000,
  })
  const c = client(m.baseUrl)
  const q = '/v2/queues/moving'
  const node = (port: number): Redis => {
    const r = new Redis({ host: '127.0.0.1', port, lazyConnect: false })
    r.on('error', () => {})
    t.teardown(() => r.disconnect())
    return r
  }
  const any = node(cluster.nodes[0]!.port)
  const slot = (await any.call('CLUSTER', 'KEYSLOT', `missive:q:{${c.project}/moving}`)) as number
  const ranges = (await any.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][]
  const fromPort = ranges.find(([lo, hi]) => slot >= lo && slot <= hi)![2][1]
  const toPort = cluster.nodes.find((n) => n.port !== fromPort)!.port
  const from = node(fromPort)
  const to = node(toPort)
  const idOf = async (r: Redis): Promise<string> => (await r.call('CLUSTER', 'MYID')) as string

  const acked = new Map<string, string>()
  let stop = false
  let refused = 0
  const producer = async (p: number): Promise<void> => {
    for (let seq = 0; !stop; seq++) {
      const key = `${p}-${seq}`
      const r = await c.req('POST', `${q}/messages`, { body: { messages: [{ body: { key }, ttl: 3600 }] } }).catch(() => undefined)
      if (r?.status === 201) {
        const href = (r.json.resources as string[])[0]!
        acked.set(key, href.slice(href.lastIndexOf('/') + 1))
      } else {
        if (r !== undefined && r.status !== 503) t.fail(`post: ${r.status} ${r.text.slice(0, 200)}`)
        refused++
        await backoff()
      }
    }
  }
  const running = Array.from({ length: 4 }, (_, p) => producer(p))
  await waitFor(() => acked.size >= 100, { what: '100 acknowledged posts', timeoutMs: 30_000 })

  // The slot moves as redis-cli --cluster reshard moves it: IMPORTING on the target, MIGRATING on
  // the source, keys MIGRATEd in batches (meanwhile the source answers ASK for keys already moved,
  // TRYAGAIN for a script whose keys are split), then the slot assigned to the target everywhere.
  const [fromId, toId] = [await idOf(from), await idOf(to)]
  await to.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId)
  await from.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId)
  for (;;) {
    const keys = (await from.call('CLUSTER', 'GETKEYSINSLOT', slot, 2)) as string[]
    if (keys.length === 0) break
    await from.call('MIGRATE', '127.0.0.1', toPort, '', 0, 5000, 'KEYS', ...keys)
    // Small batches and a pause: posts run between the moves (load shaping, not synchronisation).
    await new Promise((r) => setTimeout(r, 20))
  }
  for (const n of cluster.nodes) await node(n.port).call('CLUSTER', 'SETSLOT', slot, 'NODE', toId)
  const movedAt = acked.size
  await waitFor(() => acked.size >= movedAt + 100, { what: '100 acknowledged posts on the new master', timeoutMs: 30_000 })
  stop = true
  await Promise.all(running)
  t.equal(await from.call('CLUSTER', 'COUNTKEYSINSLOT', slot), 0, 'the slot left its old master')
  t.ok(((await to.call('CLUSTER', 'COUNTKEYSINSLOT', slot)) as number) > 0, 'the queue lives on the new master')

  const listed: { id: string; key: string }[] = []
  let path = `${q}/messages?echo=true&limit=20`
  for (let pages = 0; pages < 10_000; pages++) {
    const r = await c.req('GET', path)
    if (r.status !== 200) t.fail(`listing: ${r.status} ${r.text.slice(0, 200)}`)
    const msgs = (r.json?.messages ?? []) as { id: string; body: { key: string } }[]
    if (msgs.length === 0) break
    for (const msg of msgs) listed.push({ id: msg.id, key: msg.body.key })
    path = (r.json.links as { rel: string; href: string }[]).find((l) => l.rel === 'next')!.href
  }
  const ids = new Set(listed.map((x) => x.id))
  t.equal(ids.size, listed.length, 'no message listed twice')
  t.equal(new Set(listed.map((x) => x.key)).size, listed.length, 'no post stored twice')
  t.same([...acked.values()].filter((id) => !ids.has(id)), [], 'every acknowledged post is there')
  t.comment(`resharding: ${acked.size} posts acknowledged while the slot moved, ${refused} refused (503: TRYAGAIN past the client's retries)`)
})
