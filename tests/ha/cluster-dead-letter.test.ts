/**
 * Dead-lettering on a Redis Cluster pool, where the queue and its dead-letter queue live in two
 * slots (docs/ha.md, "Dead-letter queues on a Cluster"): the claim moves a due message into the
 * queue's outbox, the driver puts it into the DLQ (idempotent), then deletes it from the outbox.
 * A crash is simulated between the steps (the next step's command fails without being sent):
 * the message is never visible in two places, never lost, and the next claim finishes the move
 * with the message in the DLQ exactly once — also when the DLQ's copy was consumed meanwhile.
 */
import { randomUUID } from 'node:crypto'
import { Command } from 'ioredis'
import t from 'tap'
import type { QueueRef } from '../../shared/storage/contract.js'
import { parseRedisUri } from '../../shared/storage/redis-uri.js'
import { RedisDriver } from '../../worker/storage/redis/driver.js'
import { queueKeys } from '../../worker/storage/redis/keys.js'
import { postOpts, type TapTest } from '../contract/suite.js'
import { startRedisCluster } from '../helpers/redis-cluster.js'

t.setTimeout(120_000)
const cluster = await startRedisCluster(t, { masters: 3, replicasPerMaster: 0, appendfsync: 'everysec' })
const CLAIM = { ttl: 60, grace: 60, limit: 10 }
const slot = (ref: QueueRef): number => new Command('exists', [queueKeys(ref).q]).getSlot()!

/** Makes the next command `pick` selects fail as a lost connection would, without sending it. */
function crashOn(driver: RedisDriver, pick: (cmd: Command) => boolean): { fired: boolean } {
  const state = { fired: false }
  const redis = driver.redis
  const send = redis.sendCommand.bind(redis)
  redis.sendCommand = ((cmd: Command, ...rest: unknown[]) => {
    if (!state.fired && pick(cmd)) {
      state.fired = true
      return Promise.reject(new Error('Connection is closed.'))
    }
    return (send as (c: Command, ...r: unknown[]) => Promise<unknown>)(cmd, ...rest)
  }) as typeof redis.sendCommand
  return state
}

async function setup(t: TapTest): Promise<{ driver: RedisDriver; src: QueueRef; dlq: QueueRef; id: string }> {
  const driver = await RedisDriver.open({ ...parseRedisUri(cluster.uri('durability=fast'), 'fast'), gcIntervalMs: 0 })
  t.teardown(() => driver.close())
  const project = `p-${randomUUID()}`
  const src: QueueRef = { project, queue: 'src' }
  let dlq: QueueRef = { project, queue: 'dlq' }
  for (let n = 0; slot(dlq) === slot(src); n++) dlq = { project, queue: `dlq${n}` }
  await driver.createQueue(src, { _max_claim_count: 1, _dead_letter_queue: dlq.queue })
  const [id] = await driver.postMessages(src, [{ body: '"poison"', ttl: 600 }], postOpts())
  const c = (await driver.createClaim(src, { ...CLAIM, limit: 1 }))!
  await driver.releaseClaim(src, c.id)
  return { driver, src, dlq, id: id! }
}
t.test('a crash after the message left the queue: in neither queue for a moment, then in the DLQ once', async (t) => {
  const { driver, src, dlq, id } = await setup(t)
  const crash = crashOn(driver, (cmd) => cmd.name === 'evalsha' && String(cmd.args[2]).startsWith(queueKeys(dlq).q))
  t.equal(await driver.createClaim(src, CLAIM), null, 'nothing to claim: the message is due for the DLQ')
  t.ok(crash.fired, 'the put step failed')
  t.equal(await driver.getMessage(src, id), null, 'not in the queue (in its outbox)')
  t.same(await driver.getMessages(dlq, [id]), [], 'not in the DLQ yet')
  t.equal((await driver.stats(src)).total, 0)
  t.equal(await driver.createClaim(src, CLAIM), null, 'the next claim finishes the move')
  t.same((await driver.getMessages(dlq, [id])).map((m) => m.id), [id], 'in the DLQ, under its id')
  t.equal((await driver.stats(dlq)).total, 1, 'once')
})

t.test('a crash after the put: the next claim adds nothing twice, even after the DLQ consumed it', async (t) => {
  const { driver, src, dlq, id } = await setup(t)
  const outbox = `missive:o:{${queueKeys(src).tag}}`
  const crash = crashOn(driver, (cmd) => cmd.name === 'hdel' && cmd.args[0] === outbox)
  await driver.createClaim(src, CLAIM)
  t.ok(crash.fired, 'the outbox was not emptied')
  t.same((await driver.getMessages(dlq, [id])).map((m) => m.id), [id], 'in the DLQ')
  t.equal(await driver.getMessage(src, id), null, 'and not in the queue: never visible twice')
  // The DLQ's consumer takes it before the move is finished.
  const taken = (await driver.createClaim(dlq, CLAIM))!
  await driver.deleteMessages(dlq, [id], [taken.id])
  t.equal(await driver.createClaim(src, CLAIM), null, 'the next claim finishes the move')
  t.equal((await driver.stats(dlq)).total, 0, 'the repeated put added nothing: the message is not back')
  t.equal(await driver.redis.hlen(outbox), 0, 'the outbox is empty')
})
