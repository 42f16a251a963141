/**
 * Deletes on one queue made in the same turn of the event loop (bulk and single, from many
 * consumers) reach Redis in deleteMessages script calls of DELETE_BATCH requests (messages.ts),
 * and each still gets its own answer
 * (the contract suite checks the answers on both stores: "deletes made together answer each as if
 * alone"). Without coalescing, one call each. The call count is Redis's own (`INFO commandstats`).
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import type { Redis } from 'ioredis'
import { MessageClaimed } from '../../shared/storage/errors.js'
import { DELETE_BATCH } from '../../worker/storage/redis/messages.js'
import { postOpts } from '../contract/suite.js'
import { startRedis } from '../helpers/index.js'
import { openRedisDriver, rawClient } from './util.js'

const server = await startRedis(t, { appendfsync: 'everysec' })

/** EVALSHA and EVAL calls Redis has served so far. */
async function scriptCalls(redis: Redis): Promise<number> {
  const stats = String(await redis.info('commandstats'))
  let n = 0
  for (const m of stats.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)) n += Number(m[1])
  return n
}

for (const coalesce of [true, false]) {
  t.test(`twenty consumers deleting at once: ${coalesce ? 'calls of DELETE_BATCH requests' : 'one call each'}`, async (t) => {
    const driver = await openRedisDriver(t, server, { query: 'durability=fast', coalesce })
    const raw = rawClient(t, server)
    const ref = { project: `p-${randomUUID()}`, queue: 'q' }
    await driver.postMessages(ref, Array.from({ length: 200 }, (_, i) => ({ body: String(i) })), postOpts())
    const claims = []
    for (let i = 0; i < 20; i++) claims.push((await driver.createClaim(ref, { ttl: 600, grace: 60, limit: 10 }))!)
    const free = await driver.postMessages(ref, [{ body: '"free"' }], postOpts())

    const before = await scriptCalls(raw)
    const outcomes = await Promise.allSettled([
      // Half the consumers delete their claim's messages in bulk, half one by one.
      ...claims.slice(0, 10).map((c) => driver.deleteMessages(ref, c.messages.map((m) => m.id), [c.id])),
      ...claims.slice(10).flatMap((c) => c.messages.map((m) => driver.deleteMessage(ref, m.id, c.id))),
      // One request that must fail on its own: another claim's message.
      driver.deleteMessages(ref, [claims[0]!.messages[0]!.id, free[0]!], [claims[1]!.id]),
    ])
    const calls = (await scriptCalls(raw)) - before
    t.equal(calls, coalesce ? Math.ceil(111 / DELETE_BATCH) : 111, 'script calls for 111 delete requests')
    t.same(
      outcomes.slice(0, -1).map((o) => o.status),
      Array(110).fill('fulfilled'),
      'every consumer deleted',
    )
    const last = outcomes.at(-1)!
    t.ok(last.status === 'rejected' && last.reason instanceof MessageClaimed, 'the failing request failed alone')
    t.match(await driver.stats(ref), { total: 1, claimed: 0 }, 'only the unclaimed message is left')
    t.same(
      (await driver.getMessages(ref, free)).map((m) => m.id),
      free,
    )
    await driver.deleteQueue(ref)
  })
}
