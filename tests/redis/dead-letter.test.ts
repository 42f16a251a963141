/**
 * The Redis driver's memory of each queue's dead-letter queue (worker/storage/redis/claims.ts):
 * the claim script needs the DLQ's keys up front, so the driver passes the name it remembers and
 * calls again with the name the script reports when that was stale. Covered here: the memory is
 * bounded (past 10,000 queues it starts over, and a forgotten queue still dead-letters, one call
 * later); a name that changes under every call ends in an error rather than a loop; claims
 * without coalescing. The restarted-worker and stale-memory cases through the whole service are
 * in tests/security/dead-letter-pools.test.ts.
 */
import { randomUUID } from 'node:crypto'
import type { Command } from 'ioredis'
import t from 'tap'
import type { QueueRef } from '../../shared/storage/contract.js'
import type { RedisDriver } from '../../worker/storage/redis/driver.js'
import { listOpts, postOpts } from '../contract/suite.js'
import { startRedis } from '../helpers/index.js'
import { openRedisDriver } from './util.js'

const server = await startRedis(t, { appendfsync: 'everysec' })
const CLAIM = { ttl: 60, grace: 60, limit: 10 }
const META = (dlq: string) => ({ _max_claim_count: 1, _dead_letter_queue: dlq })

/** Counts the script calls (EVALSHA/EVAL) `driver` sends; `onReply` sees each reply first. */
function scriptCalls(driver: RedisDriver, onReply?: (reply: unknown) => Promise<void>): { n: number } {
  const counter = { n: 0 }
  const redis = driver.redis
  const send = redis.sendCommand.bind(redis)
  redis.sendCommand = ((cmd: Command, ...rest: unknown[]) => {
    const p = (send as (c: Command, ...r: unknown[]) => Promise<unknown>)(cmd, ...rest)
    if (cmd.name !== 'evalsha' && cmd.name !== 'eval') return p
    counter.n++
    return onReply === undefined ? p : p.then(async (reply) => (await onReply(reply), reply))
  }) as typeof redis.sendCommand
  return counter
}

/** One message in `ref` claimed once and released: due for the DLQ at the next claim. */
async function oneDue(driver: RedisDriver, ref: QueueRef): Promise<string> {
  const [id] = await driver.postMessages(ref, [{ body: '"poison"', ttl: 600 }], postOpts())
  const c = (await driver.createClaim(ref, { ...CLAIM, limit: 1 }))!
  await driver.releaseClaim(ref, c.id)
  return id!
}

t.test('the DLQ memory is bounded: past 10,000 queues it starts over; a forgotten queue costs one more call', async (t) => {
  const driver = await openRedisDriver(t, server, { query: 'durability=fast' })
  const project = `p-${randomUUID()}`
  const first: QueueRef = { project, queue: 'first' }
  await driver.createQueue(first, META('dlq'))
  const id = await oneDue(driver, first)
  const calls = scriptCalls(driver)
  // 9,999 more queues fill the memory to 10,000; the 10,001st empties it before it is noted.
  for (let i = 0; i < 10_000; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, 10_000 - i) }, (_, j) => driver.createQueue({ project, queue: `q${i + j}` }, META('dlq'))))
  }
  const last: QueueRef = { project, queue: 'q9999' }
  await oneDue(driver, last)

  calls.n = 0
  t.equal(await driver.createClaim(last, CLAIM), null, 'the last queue: its message moved')
  t.equal(calls.n, 1, 'remembered: one script call')
  calls.n = 0
  t.equal(await driver.createClaim(first, CLAIM), null, 'the first queue: its message moved too')
  t.equal(calls.n, 2, 'forgotten: the script names the DLQ, the driver calls again')
  const inDlq = (await driver.listMessages({ project, queue: 'dlq' }, listOpts({ echo: true }))).items.map((m) => m.id)
  t.equal(inDlq.length, 2, 'both messages are in the DLQ')
  t.ok(inDlq.includes(id), "the first queue's among them")
  calls.n = 0
  await driver.createClaim(first, CLAIM)
  t.equal(calls.n, 1, 'and remembered again from the reply')
})

t.test('a DLQ name that changes under every call ends in an error, not a loop', async (t) => {
  const driver = await openRedisDriver(t, server, { query: 'durability=fast' })
  const other = await openRedisDriver(t, server, { query: 'durability=fast' })
  const src: QueueRef = { project: `p-${randomUUID()}`, queue: 'src' }
  await driver.createQueue(src, META('dlq0'))
  await oneDue(driver, src)
  let n = 0
  let renaming = true
  // Another worker renames the DLQ each time this one's claim script says the name was stale.
  const calls = scriptCalls(driver, async (reply) => {
    if (renaming && Array.isArray(reply) && reply[0] === 'DLQ') await other.setQueueMetadata(src, META(`dlq${++n}`))
  })
  await other.setQueueMetadata(src, META('dlq-start'))
  const err = await driver.createClaim(src, CLAIM).then(
    () => null,
    (e: unknown) => e,
  )
  t.match(err, { code: 'unavailable', cause: { message: /^claimMessages: the dead-letter queue of .* keeps changing$/ } }, 'a 503 for the caller to retry')
  t.equal(calls.n, 3, 'three tries, then the error')
  t.equal((await driver.stats(src)).total, 1, 'nothing moved')

  renaming = false
  calls.n = 0
  t.equal(await driver.createClaim(src, CLAIM), null, 'once the name holds still, the message moves')
  t.equal(calls.n, 2, 'the remembered name (renamed after the last reply) is stale once more; the reply names the right one')
  t.equal((await driver.listMessages({ project: src.project, queue: `dlq${n}` }, listOpts({ echo: true }))).items.length, 1)
})

t.test('without coalescing each concurrent claim is its own script call, and they still share nothing', async (t) => {
  const driver = await openRedisDriver(t, server, { query: 'durability=fast', coalesce: false })
  const src: QueueRef = { project: `p-${randomUUID()}`, queue: 'src' }
  await driver.createQueue(src, META('dlq'))
  const due = await oneDue(driver, src)
  await driver.postMessages(src, Array.from({ length: 6 }, (_, i) => ({ body: String(i) })), postOpts())
  const calls = scriptCalls(driver)
  const claims = await Promise.all([1, 2, 3].map(() => driver.createClaim(src, { ...CLAIM, limit: 2 })))
  t.equal(calls.n, 3, 'one call per claim')
  const ids = claims.flatMap((c) => c?.messages.map((m) => m.id) ?? [])
  t.equal(new Set(ids).size, 6, 'six distinct messages')
  t.notOk(ids.includes(due), 'the due message is not claimed')
  t.same((await driver.listMessages({ project: src.project, queue: 'dlq' }, listOpts({ echo: true }))).items.map((m) => m.id), [due])
})
