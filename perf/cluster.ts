/**
 * How a Redis Cluster pool scales, next to a single Redis in the same run, and its failover
 * window: `npm run build && node dist/perf/cluster.js [seconds]` (or
 * `node --import tsx perf/cluster.ts`). docs/benchmarks.md, "Redis Cluster pools", has the numbers.
 *
 * The Redis driver runs in-process (no HTTP, no worker): what is compared is the store. Scenarios
 * (closed loop, CONCURRENCY callers spread over QUEUES queues, ~200-byte bodies, `durability=fast`
 * on AOF everysec servers):
 * - post: batches of 10 per call;
 * - consume: claim 10 + bulk delete with the claim id (the queues filled by the post run).
 * Topologies: one Redis; a three-master Cluster (no replicas: the same work per write as the
 * single server, spread over three processes by the queues' hash tags).
 * Failover: a three-master Cluster with one replica each; posts run on every queue; the master
 * owning the first queue's slot is killed (SIGKILL); printed: when its replica took over, the
 * longest gap without an acknowledged post on that master's queues and on the others', and how
 * many posts were refused on each side (a refused post is retried after 10 ms); run with
 * `cluster-require-full-coverage` yes (Redis's default), then no.
 * Compare ratios within one run: absolute numbers depend on what else the machine is doing (the
 * client, one Node process, shares the machine with the servers).
 */
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { RedisDriver } from '../worker/storage/redis/driver.js'
import { parseRedisUri } from '../shared/storage/redis-uri.js'
import type { QueueRef } from '../shared/storage/contract.js'
import { queueKeys } from '../worker/storage/redis/keys.js'
import { startRedis, waitFor, type Teardown } from '../tests/helpers/index.js'
import { startRedisCluster } from '../tests/helpers/redis-cluster.js'
import { closedLoop, formatLoop, type LoopResult } from './lib/closed-loop.js'

const SECONDS = Number(process.argv[2] ?? 5)
const CONCURRENCY = 48
const QUEUES = 48
const BODY = JSON.stringify({ event: 'order.created', id: 'x'.repeat(150), n: 0 })
const MSGS = Array.from({ length: 10 }, () => ({ body: BODY }))
const OPTS = { clientId: randomUUID(), defaultTtl: 3600, postBytes: 2500, queuePolicy: true }

/** Runs `op` in CONCURRENCY closed loops for SECONDS (perf/lib/closed-loop.ts). */
const loop = (op: (i: number) => Promise<number>): Promise<LoopResult> => closedLoop(CONCURRENCY, SECONDS, op)

const fmt = formatLoop

async function throughput(uri: string): Promise<{ post: LoopResult; consume: LoopResult }> {
  const driver = await RedisDriver.open({ ...parseRedisUri(uri, 'fast'), gcIntervalMs: 0 })
  const project = `bench-${randomUUID()}`
  const refs: QueueRef[] = Array.from({ length: QUEUES }, (_, i) => ({ project, queue: `q${i}` }))
  const post = await loop(async (i) => (await driver.postMessages(refs[i % QUEUES]!, MSGS, OPTS)).length)
  const consume = await loop(async (i) => {
    const ref = refs[i % QUEUES]!
    const c = await driver.createClaim(ref, { ttl: 60, grace: 60, limit: 10 })
    if (c === null) return 0
    await driver.deleteMessages(
      ref,
      c.messages.map((m) => m.id),
      [c.id],
    )
    return c.messages.length
  })
  for (const ref of refs) await driver.deleteQueue(ref)
  await driver.close()
  return { post, consume }
}

async function failover(t: Teardown, requireFullCoverage: boolean): Promise<void> {
  const cluster = await startRedisCluster(t, { masters: 3, replicasPerMaster: 1, appendfsync: 'everysec', nodeTimeoutMs: 1000, requireFullCoverage })
  const driver = await RedisDriver.open({ ...parseRedisUri(cluster.uri('durability=fast'), 'fast'), gcIntervalMs: 0 })
  const project = `failover-${randomUUID()}`
  const refs: QueueRef[] = Array.from({ length: QUEUES }, (_, i) => ({ project, queue: `q${i}` }))
  // The master of q0's slot, and which queues it owns.
  const probe = new Redis({ host: '127.0.0.1', port: cluster.nodes[0]!.port })
  probe.on('error', () => {})
  const slotOf = async (ref: QueueRef): Promise<number> => (await probe.call('CLUSTER', 'KEYSLOT', queueKeys(ref).q)) as number
  const ranges = (await probe.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][]
  const ownerOf = (slot: number): number => ranges.find(([lo, hi]) => slot >= lo && slot <= hi)![2][1]
  const victimPort = ownerOf(await slotOf(refs[0]!))
  const onVictim = await Promise.all(refs.map(async (r) => ownerOf(await slotOf(r)) === victimPort))
  probe.disconnect()
  const victim = cluster.nodes.find((n) => n.port === victimPort)!

  const okAt: number[][] = refs.map(() => [])
  const refusedOn = { victim: 0, others: 0 }
  const othersErrors = new Map<string, number>()
  let stop = false
  const posting = refs.map(async (ref, i) => {
    while (!stop) {
      try {
        await driver.postMessages(ref, [{ body: BODY }], OPTS)
        okAt[i]!.push(performance.now())
      } catch (err) {
        if (onVictim[i]) refusedOn.victim++
        else {
          refusedOn.others++
          const why = String(((err as Error).cause as Error | undefined)?.message ?? (err as Error).message)
          othersErrors.set(why, (othersErrors.get(why) ?? 0) + 1)
        }
        await new Promise((r) => setTimeout(r, 10))
      }
    }
  })
  await new Promise((r) => setTimeout(r, 1000))
  const killedAt = performance.now()
  await victim.kill9()
  await waitFor(async () => (await cluster.masters()).length === 3 && !(await cluster.masters()).includes(victim), { timeoutMs: 60_000, what: 'the replica to take over' })
  const promoted = performance.now() - killedAt
  await waitFor(() => okAt.every((times, i) => !onVictim[i] || times.some((x) => x > killedAt + promoted)), { timeoutMs: 60_000, what: 'posts on the failed master\'s queues again' })
  await new Promise((r) => setTimeout(r, 1000))
  stop = true
  await Promise.all(posting)
  await driver.close()
  const gap = (victimSide: boolean): number => {
    let worst = 0
    okAt.forEach((times, i) => {
      if (onVictim[i] !== victimSide) return
      for (let k = 1; k < times.length; k++) if (times[k]! > killedAt) worst = Math.max(worst, times[k]! - Math.max(times[k - 1]!, killedAt))
    })
    return worst
  }
  console.log(`replica took over ${Math.round(promoted)} ms after the kill (cluster-node-timeout 1000 ms)`)
  console.log(`longest gap without a post: ${Math.round(gap(true))} ms on the ${onVictim.filter(Boolean).length} queues of the killed master; ${Math.round(gap(false))} ms on the other ${onVictim.filter((x) => !x).length}`)
  console.log(`refused posts: ${refusedOn.victim} on the killed master's queues; ${refusedOn.others} on the others'${othersErrors.size === 0 ? '' : ` (${[...othersErrors].map(([why, n]) => `${n}× ${why}`).join('; ')})`}`)
}

async function main(): Promise<void> {
  const cleanups: (() => unknown)[] = []
  const t: Teardown = { teardown: (fn) => void cleanups.push(fn) }
  try {
    const single = await startRedis(t, { appendfsync: 'everysec' })
    const cluster = await startRedisCluster(t, { masters: 3, replicasPerMaster: 0, appendfsync: 'everysec' })
    console.log(`${CONCURRENCY} callers over ${QUEUES} queues, ${SECONDS} s per run, durability=fast (AOF everysec), driver in-process`)
    // Alternated, twice: the same machine state for both.
    for (let round = 1; round <= 2; round++) {
      for (const [name, uri] of [
        ['single Redis     ', `${single.url}?durability=fast`],
        ['Cluster, 3 masters', cluster.uri('durability=fast')],
      ] as const) {
        const r = await throughput(uri)
        console.log(`round ${round} ${name} post×10          ${fmt(r.post)}`)
        console.log(`round ${round} ${name} claim10+delete   ${fmt(r.consume)}`)
      }
    }
    for (const full of [true, false]) {
      console.log(`\n== failover (3 masters + 3 replicas, durability=fast, cluster-require-full-coverage ${full ? 'yes' : 'no'})`)
      await failover(t, full)
    }
  } finally {
    for (const fn of cleanups.reverse()) await fn()
  }
}

await main()
