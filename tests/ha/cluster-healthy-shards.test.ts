/**
 * A Redis Cluster failover must not refuse the healthy masters' queues (docs/ha.md, "What happens
 * on a cluster failover"). Six nodes on loopback (three masters, one replica each,
 * `cluster-node-timeout` 1 s, Redis's default `cluster-require-full-coverage yes`), the Redis
 * driver in-process on `redis+cluster://…?durability=fast`, posts running on queues of every
 * master; one master is killed with SIGKILL. Between the moment the cluster marks it failed and
 * its replica's promotion, every master answers CLUSTERDOWN (the cluster no longer covers every
 * slot): the test sees that state on a healthy master, so the window it tests did happen. The
 * posts on the other masters' queues must ride it out: not one of them refused. Before the fix
 * ioredis resent each CLUSTERDOWN to a random master — the dead one a third of the time — and
 * those posts failed with "Connection is closed" (here: a dozen or more per run; see
 * worker/storage/redis/cluster.ts). Every acknowledged post on those queues is also announced to
 * long-pollers (PUBLISH, heard by a subscriber on a healthy master): ioredis sent each PUBLISH to
 * a random master, and the ones sent to the dead master were lost.
 */
import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { RedisDriver } from '../../worker/storage/redis/driver.js'
import { parseRedisUri } from '../../shared/storage/redis-uri.js'
import type { QueueRef } from '../../shared/storage/contract.js'
import { queueKeys } from '../../worker/storage/redis/keys.js'
import { parsePosted, postedChannel } from '../../shared/storage/posted.js'
import { waitFor } from '../helpers/index.js'
import { startRedisCluster } from '../helpers/redis-cluster.js'

t.setTimeout(120_000)

const QUEUES = 24
const OPTS = { clientId: randomUUID(), defaultTtl: 3600, postBytes: 2500, queuePolicy: true }

/** The port of the master that owns each queue's slot, as the cluster says now. */
async function masterPorts(t: Test, port: number, refs: QueueRef[]): Promise<number[]> {
  const probe = new Redis({ host: '127.0.0.1', port })
  probe.on('error', () => {})
  t.teardown(() => probe.disconnect())
  const ranges = (await probe.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][]
  return Promise.all(
    refs.map(async (ref) => {
      const slot = (await probe.call('CLUSTER', 'KEYSLOT', queueKeys(ref).q)) as number
      return ranges.find(([lo, hi]) => slot >= lo && slot <= hi)![2][1]
    }),
  )
}

t.test('kill -9 one master: the other masters\' queues see no refused post', async (t) => {
  const cluster = await startRedisCluster(t, { masters: 3, replicasPerMaster: 1, appendfsync: 'everysec', nodeTimeoutMs: 1000 })
  const driver = await RedisDriver.open({ ...parseRedisUri(cluster.uri('durability=fast'), 'fast'), gcIntervalMs: 0 })
  t.teardown(() => driver.close())

  const project = `p-${randomUUID()}`
  const refs: QueueRef[] = Array.from({ length: QUEUES }, (_, i) => ({ project, queue: `q${i}` }))
  const owner = await masterPorts(t, cluster.nodes[0]!.port, refs)
  const victimPort = owner[0]!
  const healthyPorts = [...new Set(owner)].filter((p) => p !== victimPort)
  t.equal(healthyPorts.length, 2, 'the queues spread over all three masters')
  const victim = cluster.nodes.find((n) => n.port === victimPort)!
  // A healthy master, watched for the cluster's own verdict during the failover.
  const watch = new Redis({ host: '127.0.0.1', port: healthyPorts[0]! })
  watch.on('error', () => {})
  t.teardown(() => watch.disconnect())

  // The long-poll wake-ups, as a proxy's subscriber on a healthy master hears them.
  const sub = new Redis({ host: '127.0.0.1', port: healthyPorts[1]! })
  sub.on('error', () => {})
  t.teardown(() => sub.disconnect())
  const announced = new Set<string>()
  sub.on('message', (_channel: string, line: string) => {
    for (const id of parsePosted(line)?.ids ?? []) announced.add(id)
  })
  await sub.subscribe(postedChannel(0))
  // A long-poller on every queue: their posts are announced (lua/listenQueue.lua).
  for (const ref of refs) await driver.listen(ref, 600_000)
  const ackedIds: string[] = []

  let killed = false
  let stop = false
  const refused: string[] = []
  const acked = refs.map(() => 0)
  const ackedAfterPromotion = refs.map(() => 0)
  let promoted = false
  const posting = refs.map(async (ref, i) => {
    while (!stop) {
      try {
        const ids = await driver.postMessages(ref, [{ body: `m${i}` }], OPTS)
        if (owner[i] !== victimPort && killed) ackedIds.push(...ids)
        acked[i]!++
        if (promoted) ackedAfterPromotion[i]!++
      } catch (err) {
        if (owner[i] !== victimPort) refused.push(`q${i} on :${owner[i]}${killed ? '' : ' (before the kill)'}: ${(err as Error).message}; ${String(((err as Error).cause as Error | undefined)?.message)}`)
        // Load shaping, not synchronisation: the victim's queues fail fast until the promotion.
        await new Promise((r) => setTimeout(r, 10))
      }
    }
  })

  await waitFor(() => acked.every((n) => n >= 5), { what: 'posts acknowledged on every queue', timeoutMs: 20_000 })
  killed = true
  await victim.kill9()
  let sawClusterDown = false
  await waitFor(
    async () => {
      const info = (await watch.call('CLUSTER', 'INFO').catch(() => '')) as string
      if (/^cluster_state:fail/m.test(info)) sawClusterDown = true
      const masters = await cluster.masters()
      return masters.length === 3 && !masters.includes(victim)
    },
    { what: 'the replica of the killed master to take over', timeoutMs: 30_000, intervalMs: 20 },
  )
  promoted = true
  // Traffic goes on until every queue, the failed master's included, is served again.
  await waitFor(() => ackedAfterPromotion.every((n) => n >= 3), { what: 'posts acknowledged on every queue after the promotion', timeoutMs: 30_000 })
  stop = true
  await Promise.all(posting)

  t.ok(sawClusterDown, 'a healthy master said cluster_state:fail between the kill and the promotion (the window under test happened)')
  t.same(refused, [], 'no post on a healthy master\'s queue was refused')
  // Announcements follow their post: polled, not slept on; a lost one never comes.
  const unheard = (): string[] => ackedIds.filter((id) => !announced.has(id))
  await waitFor(() => unheard().length === 0, { what: 'every announcement', timeoutMs: 5_000 }).catch(() => undefined)
  t.ok(ackedIds.length > 0, 'posts acknowledged on the healthy masters\' queues after the kill')
  t.same(unheard(), [], `every post acknowledged on a healthy master's queue after the kill was announced (${ackedIds.length} posts)`)
})

t.test('a cluster that stays down: a post is refused with the cluster\'s own reason, CLUSTERDOWN, after bounded retries', async (t) => {
  // Three masters without replicas: one killed, its slots stay uncovered, and every master
  // answers CLUSTERDOWN for good. The driver's resends to the slot's master end (20 × 100 ms)
  // and the post fails with what the cluster said; ioredis's random resends ended on the dead
  // master ("Connection is closed") or ran out ("Too many Cluster redirections").
  const cluster = await startRedisCluster(t, { masters: 3, replicasPerMaster: 0, appendfsync: 'everysec', nodeTimeoutMs: 1000 })
  const driver = await RedisDriver.open({ ...parseRedisUri(cluster.uri('durability=fast'), 'fast'), gcIntervalMs: 0 })
  t.teardown(() => driver.close())
  const project = `p-${randomUUID()}`
  const refs: QueueRef[] = Array.from({ length: 12 }, (_, i) => ({ project, queue: `q${i}` }))
  const owner = await masterPorts(t, cluster.nodes[0]!.port, refs)
  for (const ref of refs) await driver.postMessages(ref, [{ body: 'before' }], OPTS)
  const victim = cluster.nodes.find((n) => n.port === owner[0])!
  const healthy = refs.filter((_, i) => owner[i] !== victim.port)
  t.ok(healthy.length > 0, 'queues on the other masters')
  const watch = new Redis({ host: '127.0.0.1', port: owner.find((p) => p !== victim.port)! })
  watch.on('error', () => {})
  t.teardown(() => watch.disconnect())
  await victim.kill9()
  await waitFor(async () => /^cluster_state:fail/m.test((await watch.call('CLUSTER', 'INFO')) as string), { what: 'the cluster to be down', timeoutMs: 20_000 })
  const posted = await Promise.allSettled(healthy.map((ref) => driver.postMessages(ref, [{ body: 'during' }], OPTS)))
  const reasons = posted.map((p) => (p.status === 'rejected' ? String(((p.reason as Error).cause as Error | undefined)?.message ?? p.reason) : 'stored'))
  t.ok(
    reasons.every((r) => r.startsWith('CLUSTERDOWN')),
    `every post on a healthy master's queue refused with CLUSTERDOWN: ${[...new Set(reasons)].join(' | ')}`,
  )
})
