/**
 * How claims and listings learn that their queue exists (lua/lib.lua, `queue_exists`): from the
 * queue record's `created`, not from its metadata, so their cost does not grow with the metadata;
 * a record written before `created` existed (metadata alone) is still a queue, and a missing
 * record is none. The command counts are Redis's own (`INFO commandstats`).
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import type { Redis } from 'ioredis'
import { queueKeys } from '../../worker/storage/redis/keys.js'
import { postOpts } from '../contract/suite.js'
import { startRedis } from '../helpers/index.js'
import { openRedisDriver, rawClient } from './util.js'

const server = await startRedis(t, { appendfsync: 'everysec' })

/** HEXISTS calls Redis has served so far. */
async function hexists(redis: Redis): Promise<number> {
  return Number(/cmdstat_hexists:calls=(\d+)/.exec(String(await redis.info('commandstats')))?.[1] ?? 0)
}

const CLAIM = { ttl: 60, grace: 60, limit: 10 }
const LIST = { limit: 10, clientId: randomUUID(), echo: true, includeClaimed: true }

t.test('a queue with a record is found without reading its metadata', async (t) => {
  const driver = await openRedisDriver(t, server, { query: 'durability=fast' })
  const raw = rawClient(t, server)
  const ref = { project: `p-${randomUUID()}`, queue: 'q' }
  // 60,000 bytes of metadata: what a claim or a listing must not copy into Lua on every call.
  await driver.createQueue(ref, { description: 'x'.repeat(60_000) })
  const ids = await driver.postMessages(ref, [{ body: '1' }, { body: '2' }], postOpts())
  const before = await hexists(raw)
  t.same((await driver.listMessages(ref, LIST)).items.map((m) => m.id), ids, 'listed')
  t.same((await driver.createClaim(ref, CLAIM))?.messages.map((m) => m.id), ids, 'claimed')
  t.equal((await hexists(raw)) - before, 0, 'no fallback: the record has created')
})

t.test('a record written before created existed (metadata alone) is still a queue', async (t) => {
  const driver = await openRedisDriver(t, server, { query: 'durability=fast' })
  const raw = rawClient(t, server)
  const ref = { project: `p-${randomUUID()}`, queue: 'q' }
  const ids = await driver.postMessages(ref, [{ body: '1' }, { body: '2' }], postOpts())
  await raw.hdel(queueKeys(ref).q, 'created')
  const before = await hexists(raw)
  t.same((await driver.listMessages(ref, LIST)).items.map((m) => m.id), ids, 'listed')
  t.same((await driver.createClaim(ref, CLAIM))?.messages.map((m) => m.id), ids, 'claimed')
  t.equal((await hexists(raw)) - before, 2, 'each found by HEXISTS of its metadata')
})

t.test('a queue without a record is none: nothing listed, nothing claimed', async (t) => {
  const driver = await openRedisDriver(t, server, { query: 'durability=fast' })
  const raw = rawClient(t, server)
  const ref = { project: `p-${randomUUID()}`, queue: 'q' }
  await driver.postMessages(ref, [{ body: '1' }], postOpts())
  // Messages left behind a record that is gone (no operation does this: it proves the check).
  await raw.unlink(queueKeys(ref).q)
  t.same((await driver.listMessages(ref, LIST)).items, [], 'nothing listed')
  t.equal((await driver.createClaim(ref, CLAIM))?.messages.length ?? 0, 0, 'nothing claimed')
})
