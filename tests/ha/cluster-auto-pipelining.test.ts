/**
 * `auto_pipelining=true` on a Redis Cluster pool (docs/ha.md, "How the pool uses the cluster"):
 * the option is ignored there. ioredis's auto-pipelining put concurrent scripts of queues on
 * different masters into one pipeline (it groups a script by its key count, not by its key) and
 * refused the pipeline whole: every concurrent post to queues spread over the masters failed
 * ("All keys in the pipeline should belong to the same slots allocation group"), 503 for the
 * client. Three masters on loopback, the Redis driver in-process.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { RedisDriver } from '../../worker/storage/redis/driver.js'
import { parseRedisUri } from '../../shared/storage/redis-uri.js'
import type { QueueRef } from '../../shared/storage/contract.js'
import { startRedisCluster } from '../helpers/redis-cluster.js'

t.setTimeout(60_000)

t.test('concurrent posts to queues on every master, auto_pipelining=true: all stored', async (t) => {
  const cluster = await startRedisCluster(t, { masters: 3, replicasPerMaster: 0, appendfsync: 'everysec' })
  const driver = await RedisDriver.open({ ...parseRedisUri(cluster.uri('durability=fast&auto_pipelining=true'), 'fast'), gcIntervalMs: 0 })
  t.teardown(() => driver.close())
  const opts = { clientId: randomUUID(), defaultTtl: 3600, postBytes: 2500, queuePolicy: true }
  const project = `p-${randomUUID()}`
  // 24 queues: their hash tags spread them over the three masters.
  const refs: QueueRef[] = Array.from({ length: 24 }, (_, i) => ({ project, queue: `q${i}` }))
  for (let round = 0; round < 3; round++) {
    const posted = await Promise.allSettled(refs.map((ref, i) => driver.postMessages(ref, [{ body: `${i}.${round}` }], opts)))
    const refused = posted.flatMap((p) => (p.status === 'rejected' ? [String(((p.reason as Error).cause as Error | undefined)?.message ?? p.reason)] : []))
    t.same(refused, [], `round ${round}: no post refused`)
  }
  const bodies = await Promise.all(refs.map(async (ref) => (await driver.listMessages(ref, { limit: 10, echo: true, clientId: opts.clientId, includeClaimed: true })).items.map((m) => m.body)))
  t.same(bodies, refs.map((_, i) => [0, 1, 2].map((round) => `${i}.${round}`)), 'each queue holds its three messages, once each')
})
