/**
 * Redis-only migration behaviour (the contract suite covers the rest): the fence and journal
 * keys, what deleting a queue leaves, and large posts staged when the switch comes.
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { manualClock } from '../../shared/clock.js'
import { POST_CHUNK } from '../../shared/storage/contract.js'
import { QueueMoved } from '../../shared/storage/errors.js'
import { queueKeys } from '../../worker/storage/redis/keys.js'
import { postOpts } from '../contract/suite.js'
import { startRedis } from '../helpers/index.js'
import { keySlot, openRedisDriver, rawClient } from './util.js'

const server = await startRedis(t, { appendfsync: 'everysec' })
const fresh = () => ({ project: `p-${randomUUID()}`, queue: 'q' })

t.test('fence and journal keys share the queue slot; deleting the queue keeps them', async (t) => {
  const driver = await openRedisDriver(t, server, { query: 'durability=fast' })
  const redis = rawClient(t, server)
  const ref = fresh()
  const k = queueKeys(ref)
  t.equal(k.list.length, 13, "the queue's data (with the expiry marks' s and t), the fence and the journal")
  t.same(new Set(k.list.map(keySlot)).size, 1, 'one slot')
  const [a] = await driver.postMessages(ref, [{ body: '1' }, { body: '2' }], postOpts())
  t.equal(await redis.exists(k.f), 0, 'no fence key for a queue that is not moving')
  await driver.fenceQueue(ref, { token: 'm1', to: 'b', state: 'journal' }, null)
  await driver.deleteMessage(ref, a)
  t.same(await redis.hgetall(k.f), { state: 'journal', token: 'm1', to: 'b', jv: '1', reset: '0' })
  t.same(await redis.zrange(k.j, 0, -1, 'WITHSCORES'), [a, '1'])
  await driver.deleteQueue(ref)
  t.equal(await redis.exists(k.q), 0, 'the data is gone')
  t.equal(await redis.hget(k.f, 'reset'), '1', 'the fence stays, with the reset marked')
  t.equal(await redis.zcard(k.j), 1, 'and the journal')
  await driver.fenceQueue(ref, null, 'm1')
  t.equal(await redis.exists(k.f, k.j), 0, 'clearing the fence frees both keys')
})

t.test('a large post cannot commit after the switch; readForMigration rolls its stage back', async (t) => {
  const clock = manualClock()
  const driver = await openRedisDriver(t, server, { query: 'durability=fast', clock })
  const redis = rawClient(t, server)
  const ref = fresh()
  const k = queueKeys(ref)
  const [first] = await driver.postMessages(ref, [{ body: '"first"' }], postOpts())
  // A post whose poster stalled after its first chunk: a stage and one staged message.
  const staged = randomUUID()
  await redis.eval(
    `local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
     local now = tonumber(ARGV[2])
     redis.call('HSET', KEYS[2], ARGV[1], cmsgpack.pack({ seq, now, 60, now + 60000, now, 0, '', 0, 'c', '"staged"' }))
     redis.call('ZADD', KEYS[3], seq, ARGV[1])
     redis.call('ZADD', KEYS[4], seq, ARGV[1])
     redis.call('ZADD', KEYS[5], now + 60000, ARGV[1])
     redis.call('HSET', KEYS[1], 'stage', 'tok', 'stagelo', seq, 'stagedl', now + 5000, 'stagen', 1)`,
    5, k.q, k.m, k.a, k.r, k.e, staged, clock(),
  )
  let batch = await driver.readForMigration(ref, 0, 10)
  t.same(batch.records.map((r) => r.id), [first], 'the staged message is not copied')
  t.equal(batch.end, false, 'not the end while a post is staged')
  await driver.fenceQueue(ref, { token: 'm1', to: 'b', state: 'moved' }, null)
  await t.rejects(
    driver.postMessages(ref, Array.from({ length: POST_CHUNK + 1 }, () => ({ body: '0' })), postOpts()),
    QueueMoved,
    'a large post is refused under moved',
  )
  batch = await driver.readForMigration(ref, batch.next, 10)
  t.equal(batch.end, true, 'under moved the abandoned stage is rolled back: the end')
  t.equal(await redis.hexists(k.m, staged), 0, 'its message is gone')
  t.equal(await redis.hexists(k.q, 'stage'), 0)
  t.equal(await driver.countForMigration(ref), 1)
})
