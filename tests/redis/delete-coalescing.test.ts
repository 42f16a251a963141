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
import { manualClock } from '../../shared/clock.js'
import { MessageClaimed } from '../../shared/storage/errors.js'
import { queueKeys } from '../../worker/storage/redis/keys.js'
import { DELETE_BATCH, DELETE_IDS } from '../../worker/storage/redis/messages.js'
import { postOpts } from '../contract/suite.js'
import { startRedis } from '../helpers/index.js'
import { openRedisDriver, rawClient } from './util.js'

const server = await startRedis(t, { appendfsync: 'everysec' })

/** Calls of the named commands Redis has served so far (`INFO commandstats`). */
async function calls(redis: Redis, ...names: string[]): Promise<number> {
  const stats = String(await redis.info('commandstats'))
  let n = 0
  for (const m of stats.matchAll(/cmdstat_(\w+):calls=(\d+)/g)) if (names.includes(m[1]!)) n += Number(m[2])
  return n
}

/** EVALSHA and EVAL calls Redis has served so far. */
const scriptCalls = (redis: Redis): Promise<number> => calls(redis, 'evalsha', 'eval')

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

t.test('a delete of messages its claim holds leaves the ready and delayed indexes alone', async (t) => {
  const driver = await openRedisDriver(t, server, { query: 'durability=fast' })
  const raw = rawClient(t, server)
  const ref = { project: `p-${randomUUID()}`, queue: 'q' }
  const keys = queueKeys(ref)
  await driver.postMessages(ref, Array.from({ length: 4 }, (_, i) => ({ body: String(i) })), postOpts())
  const claim = (await driver.createClaim(ref, { ttl: 600, grace: 60, limit: 3 }))!
  const ids = claim.messages.map((m) => m.id)
  const before = await calls(raw, 'zrem')
  await driver.deleteMessages(ref, ids, [claim.id])
  // a and i: the claimed messages are in no other index, and the queue has no e (nor s, which
  // holds e's members) while the expiry marks cover every message (lua/lib.lua).
  t.equal(await raw.exists(keys.e, keys.s), 0, 'no e and no s: the marks cover every message')
  t.equal((await calls(raw, 'zrem')) - before, 2, 'one ZREM per index that may hold them')
  for (const key of [keys.a, keys.r, keys.d, keys.i, keys.e, keys.s]) {
    t.same(await raw.zmscore(key, ...ids), [null, null, null], `gone from ${key}`)
  }
  t.equal(await raw.hexists(keys.m, ids[0]!), 0, 'record gone')
  t.match(await driver.stats(ref), { total: 1, claimed: 0 })

  // A message expiring before the last mark is in e and s: a delete then removes from them too.
  const [early] = await driver.postMessages(ref, [{ body: '"early"', ttl: 60 }], postOpts())
  t.not(await raw.zscore(keys.e, early!), null, 'the earlier-expiring message is in e')
  const second = (await driver.createClaim(ref, { ttl: 30, grace: 60, limit: 2 }))!
  const ids2 = second.messages.map((m) => m.id)
  t.ok(ids2.includes(early!), 'claimed with the other one left')
  const before2 = await calls(raw, 'zrem')
  await driver.deleteMessages(ref, ids2, [second.id])
  t.equal((await calls(raw, 'zrem')) - before2, 4, 'a, i, e and s')
  for (const key of [keys.a, keys.i, keys.e, keys.s]) {
    t.same(await raw.zmscore(key, ...ids2), [null, null], `gone from ${key}`)
  }
  t.match(await driver.stats(ref), { total: 0 })
  await driver.deleteQueue(ref)
})

t.test('a claimed message put back early by a worker whose clock runs ahead, then deleted with its claim: the ready entry left goes with the next claim', async (t) => {
  const start = Date.now()
  const behind = manualClock(start)
  const ahead = manualClock(start + 120_000)
  const a = await openRedisDriver(t, server, { query: 'durability=fast', clock: behind })
  const b = await openRedisDriver(t, server, { query: 'durability=fast', clock: ahead })
  const raw = rawClient(t, server)
  const ref = { project: `p-${randomUUID()}`, queue: 'q' }
  const keys = queueKeys(ref)
  const posted = await a.postMessages(ref, Array.from({ length: 3 }, (_, i) => ({ body: String(i) })), postOpts())
  const claim = (await a.createClaim(ref, { ttl: 60, grace: 60, limit: 1 }))!
  t.same(claim.messages.map((m) => m.id), [posted[0]])
  // b's collector sees the claim expired and puts the message back in the ready index.
  await b.collectGarbage()
  t.not(await raw.zscore(keys.r, posted[0]!), null, 'promoted by the worker ahead')
  // a still sees the claim active: the delete succeeds and leaves that ready entry behind.
  await a.deleteMessages(ref, [posted[0]!], [claim.id])
  t.equal(await a.getMessage(ref, posted[0]!), null, 'deleted')
  t.match(await a.stats(ref), { total: 2, claimed: 0 }, 'counts exact: the ready index is not counted')
  const next = (await a.createClaim(ref, { ttl: 60, grace: 60, limit: 5 }))!
  t.same(next.messages.map((m) => m.id), posted.slice(1), 'the next claim takes the live messages only')
  t.equal(await raw.zscore(keys.r, posted[0]!), null, 'and removed the stale ready entry')
  t.equal(await raw.zcard(keys.r), 0)
  await a.deleteQueue(ref)
})

t.test('large bulk deletes together: calls of at most DELETE_IDS ids (one larger request alone), in order', async (t) => {
  const driver = await openRedisDriver(t, server, { query: 'durability=fast' })
  const raw = rawClient(t, server)
  const ref = { project: `p-${randomUUID()}`, queue: 'q' }
  const ids: string[] = []
  for (let i = 0; i < 11; i++) ids.push(...(await driver.postMessages(ref, Array.from({ length: 100 }, (_, j) => ({ body: String(i * 100 + j) })), postOpts())))
  const kept = await driver.postMessages(ref, [{ body: '"kept"' }], postOpts())
  t.equal(DELETE_IDS, 200, 'the grouping below assumes 200')
  const before = await scriptCalls(raw)
  const outcomes = await Promise.allSettled([
    // The first batch (DELETE_BATCH requests): four calls of 2 × 100 ids.
    ...Array.from({ length: 8 }, (_, i) => driver.deleteMessages(ref, ids.slice(i * 100, i * 100 + 100))),
    // The second batch: a single delete of an id the first call took, then a request larger than
    // DELETE_IDS, which goes in a call of its own.
    driver.deleteMessage(ref, ids[0]!),
    driver.deleteMessages(ref, ids.slice(800, 1100)),
  ])
  t.equal(DELETE_BATCH, 8)
  t.equal((await scriptCalls(raw)) - before, 4 + 2, 'six calls')
  t.same(outcomes.map((o) => o.status), Array(10).fill('fulfilled'))
  t.match(await driver.stats(ref), { total: 1 }, 'every id deleted once')
  t.same((await driver.getMessages(ref, kept)).map((m) => m.id), kept)
  await driver.deleteQueue(ref)
})
