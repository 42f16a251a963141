/**
 * The Redis driver's ready cursor (lua/lib.lua, "The ready cursor"): messages posted without
 * delay are appended past the queue record's `rc` instead of being written to the ready index,
 * and claims and pops take the oldest of the ready index and of the fresh messages past the
 * cursor. Checked here: queues stored before the cursor existed (every ready message in r, no
 * rc) keep working and take a cursor at their next post; a message that is in r *and* past the
 * cursor (as an import or a dead-lettering can leave it) is taken once; and, with fast-check,
 * random sequences of posts, claims, releases, deletes, pops and clock steps give the same
 * answers as the embedded SQLite store, with queues switched to the old layout along the way.
 */
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decode } from '@msgpack/msgpack'
import fc from 'fast-check'
import t from 'tap'
import type { Redis } from 'ioredis'
import { manualClock } from '../../shared/clock.js'
import type { DataDriver, QueueRef } from '../../shared/storage/contract.js'
import { queueKeys } from '../../worker/storage/redis/keys.js'
import { SqliteDriver } from '../../worker/storage/sqlite/driver.js'
import { postOpts, type TapTest } from '../contract/suite.js'
import { startRedis } from '../helpers/index.js'
import { openRedisDriver, rawClient } from './util.js'

const server = await startRedis(t, { appendfsync: 'everysec' })
const CLAIM = { ttl: 60, grace: 60, limit: 10 }

/**
 * Rewrites a queue into the layout from before the cursor: every message past `rc` that is
 * ready by being there (never claimed, posted without delay) goes into r, and `rc` goes.
 */
async function toOldLayout(raw: Redis, ref: QueueRef): Promise<number> {
  const k = queueKeys(ref)
  const rc = await raw.hget(k.q, 'rc')
  if (rc === null) return 0
  const past = await raw.zrangebyscore(k.a, `(${rc}`, '+inf', 'WITHSCORES')
  let moved = 0
  for (let i = 0; i < past.length; i += 2) {
    const rec = await raw.hgetBuffer(k.m, past[i]!)
    const [, created, , , visible, cc] = decode(rec!) as number[]
    if (cc === 0 && visible === created) {
      await raw.zadd(k.r, past[i + 1]!, past[i]!)
      moved++
    }
  }
  await raw.hdel(k.q, 'rc')
  return moved
}

const bodiesOf = (msgs: { body: string }[] | undefined): string[] => (msgs ?? []).map((m) => m.body)

/** A durability=fast driver on a manual clock, a raw client, and a fresh queue with its keys. */
async function setup(t: TapTest) {
  const clock = manualClock()
  const driver = await openRedisDriver(t, server, { query: 'durability=fast', clock })
  const ref = { project: `p-${randomUUID()}`, queue: 'q' }
  return { clock, driver, raw: rawClient(t, server), ref, k: queueKeys(ref) }
}

t.test('a queue stored before the cursor: claims read r, and the next post gives it a cursor', async (t) => {
  const { driver, raw, ref, k } = await setup(t)
  await driver.postMessages(ref, ['1', '2', '3', '4'].map((body) => ({ body })), postOpts())
  t.equal(await toOldLayout(raw, ref), 4, 'the four messages written to r, as the old layout had them')
  const seq = await raw.hget(k.q, 'seq')

  t.same(bodiesOf((await driver.createClaim(ref, { ...CLAIM, limit: 1 }))?.messages), ['1'], 'claimed from r')
  t.equal(await raw.hget(k.q, 'rc'), null, 'a claim gives no cursor')
  await driver.postMessages(ref, ['5', '6'].map((body) => ({ body })), postOpts())
  t.equal(await raw.hget(k.q, 'rc'), seq, 'the post set the cursor at the last seq before its messages')
  t.equal(await raw.zcard(k.r), 3, 'its messages are past the cursor, not in r')
  t.same(bodiesOf((await driver.createClaim(ref, CLAIM))?.messages), ['2', '3', '4', '5', '6'], 'FIFO across r and the cursor')
  t.equal(await driver.createClaim(ref, CLAIM), null, 'each message once')
  t.match(await driver.stats(ref), { total: 6, claimed: 6, free: 0 })
})

t.test('a message in r and past the cursor is taken once', async (t) => {
  const { driver, raw, ref, k } = await setup(t)
  const ids = await driver.postMessages(ref, ['1', '2', '3', '4', '5'].map((body) => ({ body })), postOpts())
  // As an import writes a ready message: into r, with its seq, whatever the cursor.
  for (const id of [ids[1]!, ids[3]!]) await raw.zadd(k.r, (await raw.zscore(k.a, id))!, id)
  t.same(bodiesOf((await driver.createClaim(ref, { ...CLAIM, limit: 2 }))?.messages), ['1', '2'])
  t.equal(await raw.zscore(k.r, ids[1]!), null, 'taken from r')
  t.same((await driver.popMessages(ref, 10)).map((m) => m.body), ['3', '4', '5'], 'the rest once, in order')
  t.equal(await raw.zcard(k.r), 0, 'nothing left in r')
  t.equal(await raw.hget(k.q, 'rc'), await raw.hget(k.q, 'seq'), 'the cursor at the last message')
})

t.test('delayed messages past the cursor: passed over, then claimed from r once due', async (t) => {
  const { clock, driver, raw, ref, k } = await setup(t)
  // Delays apply on queues with a default delay (Zaqar's `_default_message_delay`).
  await driver.createQueue(ref, { _default_message_delay: 1 })
  await driver.postMessages(ref, [{ body: '1', delay: 0 }, { body: '2', delay: 30 }, { body: '3', delay: 0 }], postOpts())
  t.same(bodiesOf((await driver.createClaim(ref, CLAIM))?.messages), ['1', '3'])
  t.equal(await raw.hget(k.q, 'rc'), await raw.hget(k.q, 'seq'), 'the cursor moved past the delayed message')
  await driver.postMessages(ref, [{ body: '4', delay: 0 }], postOpts())
  clock.advance(31_000)
  t.same(bodiesOf((await driver.createClaim(ref, CLAIM))?.messages), ['2', '4'], 'promoted to r, then FIFO with the one past the cursor')
})

/** One step of a random run, applied to both stores alike. */
type Op =
  | { op: 'post'; delays: number[]; ttl: number }
  | { op: 'claim'; limit: number }
  | { op: 'release'; which: number }
  | { op: 'delete'; which: number }
  | { op: 'pop'; limit: number }
  | { op: 'advance'; s: number }
  | { op: 'old-layout' }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('post' as const), delays: fc.array(fc.constantFrom(0, 0, 0, 20), { minLength: 1, maxLength: 4 }), ttl: fc.constantFrom(60, 300) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('claim' as const), limit: fc.integer({ min: 1, max: 5 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('release' as const), which: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), which: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('pop' as const), limit: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('advance' as const), s: fc.integer({ min: 5, max: 70 }) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'old-layout' as const }) },
)

t.test('random runs: the same answers as the embedded store, across the old layout and the new', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'missive-cursor-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const start = Date.now()
  const rclock = manualClock(start)
  const sclock = manualClock(start)
  const redis = await openRedisDriver(t, server, { query: 'durability=fast', clock: rclock })
  const sqlite = new SqliteDriver({ path: join(dir, 's.sqlite'), durability: 'fast', gcIntervalMs: 0, clock: sclock })
  t.teardown(() => sqlite.close())
  const raw = rawClient(t, server)
  let runs = 0
  let taken = 0
  let compared = 0
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 10, maxLength: 40 }), async (ops) => {
      runs++
      const ref = { project: `p-${randomUUID()}`, queue: 'q' }
      // Per store: the ids of the messages in posting order, and the claims by creation order.
      const posted: Record<'r' | 's', string[]> = { r: [], s: [] }
      const claims: Record<'r' | 's', string[]> = { r: [], s: [] }
      let n = 0
      // Delays apply on queues with a default delay; every message here carries its own.
      await Promise.all([redis.createQueue(ref, { _default_message_delay: 1 }), sqlite.createQueue(ref, { _default_message_delay: 1 })])
      for (const step of ops) {
        const both = async <T>(f: (d: DataDriver, side: 'r' | 's') => Promise<T>): Promise<[T | string, T | string]> => {
          const run = (d: DataDriver, side: 'r' | 's') => f(d, side).catch((err: unknown) => `error ${(err as { code?: string }).code ?? String(err)}`)
          return [await run(redis, 'r'), await run(sqlite, 's')]
        }
        let got: [unknown, unknown]
        switch (step.op) {
          case 'post': {
            const msgs = step.delays.map((delay) => ({ body: `"${++n}"`, delay, ttl: step.ttl }))
            got = await both(async (d, side) => {
              const ids = await d.postMessages(ref, msgs, postOpts())
              posted[side].push(...ids)
              return ids.length
            })
            break
          }
          case 'claim':
            got = await both(async (d, side) => {
              const c = await d.createClaim(ref, { ...CLAIM, limit: step.limit })
              if (c) claims[side].push(c.id)
              taken += c?.messages.length ?? 0
              return bodiesOf(c?.messages)
            })
            break
          case 'release':
          case 'delete':
            // The `which`-th claim made, or message posted (by now maybe claimed, deleted or gone).
            got = await both(async (d, side) => {
              const list = step.op === 'release' ? claims[side] : posted[side]
              const id = list[step.which % Math.max(1, list.length)]
              if (id !== undefined) await (step.op === 'release' ? d.releaseClaim(ref, id) : d.deleteMessage(ref, id))
              return 'ok'
            })
            break
          case 'pop':
            got = await both(async (d) => bodiesOf(await d.popMessages(ref, step.limit)))
            break
          case 'advance':
            rclock.advance(step.s * 1000)
            sclock.advance(step.s * 1000)
            got = ['ok', 'ok']
            break
          case 'old-layout':
            await toOldLayout(raw, ref)
            got = ['ok', 'ok']
            break
        }
        // A difference fails the property: fast-check shrinks the run and reports the smallest.
        if (JSON.stringify(got[0]) !== JSON.stringify(got[1])) throw new Error(`${JSON.stringify(step)}: Redis ${JSON.stringify(got[0])}, SQLite ${JSON.stringify(got[1])}`)
        // The counts (oldest and newest name each store's own ids).
        const counts = (d: DataDriver) => d.stats(ref).then(({ total, claimed, free, delayed }) => ({ total, claimed, free, delayed }), () => null)
        const [rs, ss] = await Promise.all([counts(redis), counts(sqlite)])
        if (JSON.stringify(rs) !== JSON.stringify(ss)) throw new Error(`stats after ${JSON.stringify(step)}: Redis ${JSON.stringify(rs)}, SQLite ${JSON.stringify(ss)}`)
        compared++
      }
    }),
    { numRuns: 150, seed: Number(process.env.FC_SEED ?? Date.now() % 2 ** 31) },
  )
  t.ok(runs >= 150, `${runs} runs, ${compared} steps alike in answer and stats`)
  t.ok(taken > 100, `the runs claimed messages (${taken})`)
})
