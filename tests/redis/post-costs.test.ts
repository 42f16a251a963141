/**
 * What a post costs Redis beyond its messages (lua/postMessages.lua): the queue record is read
 * once (stage, existence, post settings and last seq in one HMGET) and written once per call (the
 * seq advanced locally for every request of a coalesced call, not a HINCRBY each); the scores go
 * to the sorted sets as text built once (lib.lua `int`), exact whether whole or not; messages
 * posted without delay go past the ready cursor, not into the ready index (lib.lua). The command
 * counts are Redis's own (`INFO commandstats`); the contract suite checks the answers.
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import type { Redis } from 'ioredis'
import { manualClock } from '../../shared/clock.js'
import { queueKeys } from '../../worker/storage/redis/keys.js'
import { postOpts, type TapTest } from '../contract/suite.js'
import { startRedis } from '../helpers/index.js'
import { openRedisDriver, rawClient } from './util.js'

const server = await startRedis(t, { appendfsync: 'everysec' })

/** Calls of each command Redis has served so far (`INFO commandstats`). */
async function commandCalls(redis: Redis): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  for (const m of String(await redis.info('commandstats')).matchAll(/cmdstat_(\w+):calls=(\d+)/g)) out.set(m[1]!, Number(m[2]))
  return out
}

/** Commands served between two `commandCalls` snapshots (only those that ran). */
function delta(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [name, n] of after) if (n - (before.get(name) ?? 0) > 0) out[name] = n - (before.get(name) ?? 0)
  return out
}

/** A durable=fast driver on a clock stopped at NOW, a raw client, and a fresh queue's keys. */
const NOW = 1_764_900_000_000
async function setup(t: TapTest) {
  const driver = await openRedisDriver(t, server, { query: 'durability=fast', clock: manualClock(NOW) })
  const raw = rawClient(t, server)
  const ref = { project: `p-${randomUUID()}`, queue: 'q' }
  return { driver, raw, ref, keys: queueKeys(ref) }
}

t.test('a coalesced post of five requests to an existing queue writes the queue record once', async (t) => {
  const { driver, raw, ref, keys } = await setup(t)
  const first = await driver.postMessages(ref, [{ body: '"first"' }], postOpts())
  // A seq as any earlier writer may have left it (HINCRBY, HSET): the next post continues from it.
  await raw.hset(keys.q, 'seq', '1764900000123456')

  const before = await commandCalls(raw)
  const posted = await Promise.all(
    Array.from({ length: 5 }, (_, i) => driver.postMessages(ref, [{ body: `"${i}a"` }, { body: `"${i}b"` }], postOpts())),
  )
  const ran = delta(before, await commandCalls(raw))
  t.equal(ran.evalsha, 1, 'one script call for the five requests')
  t.equal(ran.hincrby, undefined, 'no HINCRBY per request')
  t.equal(ran.exists, 1, 'one EXISTS, of the fence (lib.lua, fence_check): none for a queue whose record was read')
  t.equal(ran.hmget, 1, 'the queue record, one HMGET (the fence is not read where it does not exist)')
  t.equal(ran.hset, 2, 'the messages, and the seq once')

  t.equal(await raw.hget(keys.q, 'seq'), '1764900000123466', 'seq advanced by the ten messages')
  const ids = posted.flat()
  const seqs = await raw.zmscore(keys.a, ...ids)
  t.same(
    seqs,
    Array.from({ length: 10 }, (_, i) => String(1764900000123457 + i)),
    'consecutive seqs after the stored one, in request order',
  )
  t.same(await raw.zmscore(keys.r, ...ids), Array(10).fill(null), 'past the ready cursor: not written to the ready index')
  t.equal(await raw.hget(keys.q, 'rc'), String(NOW * 1000), 'the cursor where the queue began (before its first message)')
  // One TTL, in order: covered by the expiry marks (lua/lib.lua), not indexed one by one in e.
  t.same(await raw.zmscore(keys.e, ...ids), Array(10).fill(null), 'no expiry index entry per message')
  t.same(
    await raw.zrange(keys.t, 0, -1, 'WITHSCORES'),
    ['1764900000123466', String(NOW + 3600 * 1000)],
    'one expiry mark: the last seq, expiry = now + ttl (the first post\'s mark moved up: same expiry)',
  )
  t.match(await raw.hgetall(keys.q), { el: '1', emax: String(NOW + 3600 * 1000), em: '1764900000123466' }, 'the last mark, in the record')
  const page = await driver.listMessages(ref, { clientId: postOpts().clientId, echo: true, includeClaimed: true, limit: 20 })
  t.same(
    page.items.map((m) => m.id),
    [...first, ...ids],
    'FIFO across the stored seq',
  )
})

t.test('a post that creates its queue: one EXISTS of its record, one write of the new record', async (t) => {
  const { driver, raw, ref, keys } = await setup(t)
  const before = await commandCalls(raw)
  const ids = await driver.postMessages(ref, [{ body: '1' }, { body: '2' }, { body: '3' }], postOpts())
  const ran = delta(before, await commandCalls(raw))
  t.equal(ran.exists, 2, 'the fence (lib.lua, fence_check), and the record, missing: EXISTS confirms it')
  t.equal(ran.hincrby, undefined)
  t.same(
    await raw.hgetall(keys.q),
    {
      meta: '{}',
      created: String(NOW),
      seq: String(NOW * 1000 + 3),
      rc: String(NOW * 1000),
      el: '1',
      emax: String(NOW + 3600 * 1000),
      em: String(NOW * 1000 + 3),
    },
    'record as ensure_queue writes it, seq advanced, the ready cursor before the first message, the last expiry mark',
  )
  t.same(await raw.zmscore(keys.a, ...ids), [1, 2, 3].map((n) => String(NOW * 1000 + n)))
  // A post whose every request fails still leaves the queue created (as Zaqar).
  const other = { project: ref.project, queue: 'full' }
  await t.rejects(driver.postMessages(other, [{ body: '1' }, { body: '2' }], postOpts({ maxMessages: 1 })))
  t.match(await raw.hgetall(queueKeys(other).q), { meta: '{}', created: String(NOW), seq: String(NOW * 1000) }, 'created, nothing stored')
})

t.test('scores that are not whole numbers keep every digit', async (t) => {
  const { driver, raw, ref, keys } = await setup(t)
  const [id] = await driver.postMessages(ref, [{ body: '1', ttl: 60.0005 }], postOpts())
  const seq = await raw.zscore(keys.a, id!)
  t.equal(await raw.zscore(keys.t, seq!), '1764900060000.5', 'expiry mark with its half millisecond')
  const msg = await driver.getMessage(ref, id!)
  t.equal(msg?.ttl, 60.0005, 'the TTL read back as posted')
})
