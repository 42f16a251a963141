/**
 * Edge cases of the Redis driver's Lua scripts, checked through the driver and against the
 * indexes directly: empty queue, all claimed, mixed expiry, delayed, markers past the end,
 * coalescing, bounded GC, and NOSCRIPT reload after SCRIPT FLUSH.
 */
import { randomUUID } from 'node:crypto'
import { mock } from 'node:test'
import t, { type Test } from 'tap'
import { manualClock } from '../../shared/clock.js'
import { FULL_MESSAGES } from '../../worker/storage/redis/coalesce.js'
import { queueKeys } from '../../worker/storage/redis/keys.js'
import { Scripts } from '../../worker/storage/redis/scripts.js'
import { listOpts, postOpts } from '../contract/suite.js'
import { startRedis } from '../helpers/index.js'
import { openRedisDriver, rawClient } from './util.js'

const server = await startRedis(t, { appendfsync: 'everysec' })
const CLAIM = { ttl: 300, grace: 60, limit: 10 }
const SECOND = 1000

const fresh = () => ({ project: `p-${randomUUID()}`, queue: 'q' })
const bodies = (n: number, ttl?: number) => Array.from({ length: n }, (_, i) => ({ body: String(i), ...(ttl === undefined ? {} : { ttl }) }))

async function sizes(redis: ReturnType<typeof rawClient>, ref: { project: string; queue: string }) {
  const k = queueKeys(ref)
  const [m, a, r, d, i, e, c, x, s, tm] = await Promise.all([
    redis.hlen(k.m), redis.zcard(k.a), redis.zcard(k.r), redis.zcard(k.d),
    redis.zcard(k.i), redis.zcard(k.e), redis.hlen(k.c), redis.zcard(k.x), redis.zcard(k.s), redis.zcard(k.t),
  ])
  return { m, a, r, d, i, e, c, x, s, t: tm }
}

t.test('empty queue', async (t) => {
  const clock = manualClock()
  const driver = await openRedisDriver(t, server, { query: 'durability=fast', clock })
  const ref = fresh()
  await driver.createQueue(ref, {})
  t.equal(await driver.createClaim(ref, CLAIM), null)
  t.same(await driver.popMessages(ref, 5), [])
  const page = await driver.listMessages(ref, listOpts())
  t.same(page.items, [])
  t.notOk(page.next)
  t.same(await driver.stats(ref), { total: 0, claimed: 0, free: 0, delayed: 0 })
  t.same(await driver.getMessages(ref, [randomUUID()]), [])
  await t.resolves(driver.deleteMessages(ref, [randomUUID()], [randomUUID()]))
})

t.test('all claimed: claims and listings stop at once; the ready index is empty', async (t) => {
  const clock = manualClock()
  const driver = await openRedisDriver(t, server, { query: 'durability=fast', clock })
  const redis = rawClient(t, server)
  const ref = fresh()
  await driver.postMessages(ref, bodies(30), postOpts())
  for (let i = 0; i < 3; i++) t.equal((await driver.createClaim(ref, CLAIM))?.messages.length, 10)
  t.equal(await driver.createClaim(ref, CLAIM), null, 'nothing left to claim')
  t.same(await driver.popMessages(ref, 5), [])
  t.match(await sizes(redis, ref), { m: 30, a: 30, r: 0, i: 30, c: 3, x: 3 })
  const free = await driver.listMessages(ref, listOpts({ includeClaimed: false }))
  t.same(free.items, [])
  t.notOk(free.next)
  t.match(await driver.stats(ref), { total: 30, claimed: 30, free: 0 })
})

t.test('mixed expiry: expired messages are never returned and are cleaned where met', async (t) => {
  const clock = manualClock()
  const driver = await openRedisDriver(t, server, { query: 'durability=fast', clock })
  const redis = rawClient(t, server)
  const ref = fresh()
  const ids: string[] = []
  for (let i = 0; i < 10; i++) ids.push(...(await driver.postMessages(ref, [{ body: String(i), ttl: i % 2 === 0 ? 60 : 3600 }], postOpts())))
  const long = ids.filter((_, i) => i % 2 === 1)
  clock.advance(61 * SECOND)
  t.match(await driver.stats(ref), { total: 5, free: 5 }, 'stats exact before any GC')
  t.equal((await sizes(redis, ref)).m, 10, 'nothing collected yet')
  t.same((await driver.listMessages(ref, listOpts())).items.map((m) => m.id), long, 'list skips expired')
  t.same((await driver.getMessages(ref, ids)).map((m) => m.id), long, 'bulk get skips expired')
  const claim = (await driver.createClaim(ref, { ...CLAIM, limit: 3 }))!
  t.same(claim.messages.map((m) => m.id), long.slice(0, 3), 'claim skips expired, FIFO')
  const s = await sizes(redis, ref)
  t.ok(s.m < 10, 'expired messages the claim met were deleted')
  t.match(s, { m: 7, a: 7, r: 0 }, 'expired ids the claim did not reach wait past the ready cursor for GC or the next claim')
  t.same((await driver.popMessages(ref, 10)).map((m) => m.id), long.slice(3))
  const gc = await driver.collectGarbage()
  t.ok(gc.queues >= 1)
  // The three left are 3,600 s messages posted in rising expiry: the expiry marks cover them
  // (lua/lib.lua), and their claims (60 s) did not extend them, so none is in e or s.
  t.match(await sizes(redis, ref), { m: 3, a: 3, e: 0, s: 0, r: 0 }, 'after GC only the claimed messages remain')
})

t.test('delayed: hidden from claims until due, then FIFO with the rest', async (t) => {
  const clock = manualClock()
  const driver = await openRedisDriver(t, server, { query: 'durability=fast', clock })
  const redis = rawClient(t, server)
  const ref = fresh()
  await driver.createQueue(ref, { _default_message_delay: 30 })
  const ids = await driver.postMessages(ref, [{ body: '"a"', delay: 60 }, { body: '"b"', delay: 0 }, { body: '"c"' }, { body: '"d"', delay: 0 }], postOpts())
  t.match(await sizes(redis, ref), { r: 0, d: 2 }, 'the two without delay are past the ready cursor, the delayed ones in d')
  t.same((await driver.createClaim(ref, { ...CLAIM, limit: 1 }))!.messages.map((m) => m.id), [ids[1]])
  t.same((await driver.popMessages(ref, 5)).map((m) => m.id), [ids[3]])
  t.equal(await driver.createClaim(ref, CLAIM), null, 'only delayed messages left')
  clock.advance(30 * SECOND)
  t.same((await driver.createClaim(ref, CLAIM))!.messages.map((m) => m.id), [ids[2]], 'the default delay is over')
  clock.advance(30 * SECOND)
  t.same((await driver.popMessages(ref, 5)).map((m) => m.id), [ids[0]])
  t.match(await sizes(redis, ref), { r: 0, d: 0 })
})

t.test('markers past the end and malformed markers', async (t) => {
  const clock = manualClock()
  const driver = await openRedisDriver(t, server, { query: 'durability=fast', clock })
  const ref = fresh()
  await driver.postMessages(ref, bodies(3), postOpts())
  const page = await driver.listMessages(ref, listOpts())
  t.equal(page.items.length, 3)
  const last = page.next!
  for (const marker of [last, String(Number(last) + 1000), '9999999999999999', 'abc', '01', '']) {
    const p = await driver.listMessages(ref, listOpts({ marker }))
    if (marker === '') continue
    t.same(p.items, [], `marker ${marker}`)
    t.notOk(p.next)
  }
  t.equal((await driver.listMessages(ref, listOpts({ marker: '0' }))).items.length, 3, 'marker 0 starts at the head')
  await driver.deleteQueue(ref)
  clock.advance(1)
  await driver.postMessages(ref, bodies(2), postOpts())
  t.same((await driver.listMessages(ref, listOpts({ marker: last }))).items.length, 2, 'markers of a deleted incarnation do not hide the new one')
})

t.test('claims and releases keep FIFO; renew after release; claim records shrink on renew', async (t) => {
  const clock = manualClock()
  const driver = await openRedisDriver(t, server, { query: 'durability=fast', clock })
  const ref = fresh()
  const ids = await driver.postMessages(ref, bodies(6), postOpts())
  const c1 = (await driver.createClaim(ref, { ...CLAIM, limit: 2 }))!
  const c2 = (await driver.createClaim(ref, { ...CLAIM, limit: 2 }))!
  await driver.releaseClaim(ref, c1.id)
  t.same((await driver.createClaim(ref, { ...CLAIM, limit: 3 }))!.messages.map((m) => m.id), [ids[0], ids[1], ids[4]], 'released messages go back to their place')
  await driver.deleteMessage(ref, ids[2], c2.id)
  await driver.renewClaim(ref, c2.id, { ttl: 100, grace: 60 })
  t.same((await driver.getClaim(ref, c2.id))!.messages.map((m) => m.id), [ids[3]])
  await t.rejects(driver.renewClaim(ref, c1.id, { ttl: 100, grace: 60 }), { code: 'not_found' }, 'a released claim is gone')
})

t.test('expired claims come back to the ready index in FIFO order', async (t) => {
  const clock = manualClock()
  const driver = await openRedisDriver(t, server, { query: 'durability=fast', clock })
  const ref = fresh()
  const ids = await driver.postMessages(ref, bodies(4), postOpts())
  await driver.createClaim(ref, { ttl: 60, grace: 60, limit: 2 })
  clock.advance(61 * SECOND)
  const again = (await driver.createClaim(ref, CLAIM))!
  t.same(again.messages.map((m) => m.id), ids)
  t.same(again.messages.map((m) => m.claimCount), [2, 2, 1, 1])
})

t.test('coalescing: concurrent posts become few script calls, each with its own ids and errors', async (t) => {
  const clock = manualClock()
  const driver = await openRedisDriver(t, server, { query: 'durability=fast', clock })
  const redis = rawClient(t, server)
  const ref = fresh()
  await driver.createQueue(ref, { _max_messages_post_size: 1000 })
  const calls = async () => {
    const info = await redis.info('commandstats')
    const n = (cmd: string) => Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(info)?.[1] ?? 0)
    return n('evalsha') + n('eval')
  }
  const before = await calls()
  const results = await Promise.allSettled(
    Array.from({ length: 20 }, (_, i) => driver.postMessages(ref, bodies(5), postOpts({ postBytes: i === 7 ? 5000 : 100 }))),
  )
  const after = await calls()
  // A batch goes as soon as it holds FULL_MESSAGES messages (coalesce.ts): 20 posts of 5 in three.
  t.equal(after - before, Math.ceil(100 / FULL_MESSAGES), 'script calls of FULL_MESSAGES messages for 20 posts of 5')
  t.equal(results.filter((r) => r.status === 'fulfilled').length, 19)
  t.match(results[7], { status: 'rejected', reason: { code: 'bad_request', message: /Max size 1000/ } }, 'the oversized post fails alone')
  const ids = results.flatMap((r) => (r.status === 'fulfilled' ? r.value : []))
  t.equal(new Set(ids).size, 95)
  const listed = (await driver.listMessages(ref, listOpts({ limit: 100 }))).items.map((m) => m.id)
  t.same(listed, ids, 'FIFO in call order')

  const before2 = await calls()
  const claims = await Promise.all(Array.from({ length: 12 }, () => driver.createClaim(ref, { ...CLAIM, limit: 10 })))
  t.equal((await calls()) - before2, Math.ceil(120 / FULL_MESSAGES), 'script calls of FULL_MESSAGES messages for 12 claims of 10')
  const claimed = claims.flatMap((c) => (c === null ? [] : c.messages.map((m) => m.id)))
  t.equal(new Set(claimed).size, 95, 'disjoint, every message once')
  t.equal(claims.filter((c) => c === null).length, 2)
})

/**
 * Two queues of one project, `a` (2,500 messages, one claim) and `b` (10 messages), all expired;
 * the sweep list holds only them (FLUSHDB first: other tests' queues would be visited too).
 */
async function expiredPair(t: Test, opts: { gcStep: number; gcBudgetMs: number; gcQueuesPerTick?: number }) {
  const redis = rawClient(t, server)
  await redis.flushdb()
  const clock = manualClock()
  const driver = await openRedisDriver(t, server, { query: 'durability=fast', clock, ...opts })
  const project = `p-${randomUUID()}`
  const a = { project, queue: 'a' }
  const b = { project, queue: 'b' }
  for (let i = 0; i < 5; i++) await driver.postMessages(a, bodies(500, 60), postOpts())
  await driver.postMessages(b, bodies(10, 60), postOpts())
  const claim = (await driver.createClaim(a, { ttl: 60, grace: 0, limit: 5 }))!
  clock.advance(3601 * SECOND)
  return { redis, driver, a, b, claim }
}

const gcTotals = (r: { queues: number; messages: number; claims: number }) => ({ queues: r.queues, messages: r.messages, claims: r.claims })

t.test('GC: a spent time budget ends the tick after one step, and the next tick resumes there', async (t) => {
  // A budget of 0 ms is spent before the first check: every tick runs exactly one step past which
  // it would go on, without depending on how fast this machine is.
  const { redis, driver, a, b, claim } = await expiredPair(t, { gcStep: 1000, gcBudgetMs: 0 })
  const ticks = []
  for (let i = 0; i < 5; i++) ticks.push(gcTotals(await driver.collectGarbage()))
  t.same(ticks, [
    { queues: 0, messages: 1000, claims: 1 }, // a full step on `a`: budget spent, resume at `a`
    { queues: 0, messages: 1000, claims: 0 }, // `a` again
    { queues: 1, messages: 500, claims: 0 }, // `a` done; budget spent before `b`
    { queues: 1, messages: 10, claims: 0 }, // `b`, the end of the list: the round-robin starts over
    { queues: 1, messages: 0, claims: 0 }, // `a` again, nothing left
  ])
  t.match(await sizes(redis, a), { m: 0, a: 0, r: 0, i: 0, e: 0, c: 0, x: 0 }, 'everything expired in a is gone')
  t.match(await sizes(redis, b), { m: 0, a: 0, r: 0, i: 0, e: 0 }, 'and in b')
  t.equal(await driver.getClaim(a, claim.id), null)
})

t.test('GC: within its budget one tick takes every step of every queue', async (t) => {
  const { redis, driver, a, b } = await expiredPair(t, { gcStep: 1000, gcBudgetMs: 600_000 })
  t.same(gcTotals(await driver.collectGarbage()), { queues: 2, messages: 2510, claims: 1 }, 'three steps on a, one on b')
  t.match(await sizes(redis, a), { m: 0, a: 0, r: 0, i: 0, e: 0, c: 0, x: 0 })
  t.match(await sizes(redis, b), { m: 0 })
  t.same(gcTotals(await driver.collectGarbage()), { queues: 2, messages: 0, claims: 0 }, 'the next tick starts over at a')
})

t.test('GC: gcQueuesPerTick bounds the queues of one tick; an empty page starts the round over', async (t) => {
  const { driver } = await expiredPair(t, { gcStep: 10_000, gcBudgetMs: 600_000, gcQueuesPerTick: 1 })
  const ticks = []
  for (let i = 0; i < 4; i++) ticks.push(gcTotals(await driver.collectGarbage()))
  t.same(ticks, [
    { queues: 1, messages: 2500, claims: 1 }, // a: one step of 10,000
    { queues: 1, messages: 10, claims: 0 }, // b: a full page of one, so no restart yet
    { queues: 0, messages: 0, claims: 0 }, // past b: an empty page, the round starts over
    { queues: 1, messages: 0, claims: 0 }, // a again
  ])
})

t.test('GC timer: ticks never overlap, failures go to onGcError, none after close', async (t) => {
  // setInterval is driven by hand; the driver's Redis I/O is real.
  mock.timers.enable({ apis: ['setInterval'] })
  t.teardown(() => mock.timers.reset())
  const errors: unknown[] = []
  const driver = await openRedisDriver(t, server, { query: 'durability=fast', gcIntervalMs: 1000, onGcError: (e) => errors.push(e) })
  const real = driver.collectGarbage.bind(driver)
  let calls = 0
  let pending: Promise<unknown> = Promise.resolve()
  driver.collectGarbage = () => {
    calls++
    const p = real()
    pending = p.catch(() => {})
    return p
  }
  mock.timers.tick(1000)
  mock.timers.tick(1000)
  t.equal(calls, 1, 'a tick while the previous one runs is skipped')
  await pending
  await new Promise<void>((r) => setImmediate(r)) // the tick's own bookkeeping (finally) is done
  mock.timers.tick(1000)
  t.equal(calls, 2, 'the next tick after it runs')
  await pending
  t.same(errors, [])

  // A connection that is gone: the tick fails, and says so through onGcError.
  driver.redis.disconnect()
  await new Promise<void>((r) => setImmediate(r))
  mock.timers.tick(1000)
  await pending
  await new Promise<void>((r) => setImmediate(r))
  t.equal(calls, 3)
  t.equal(errors.length, 1, 'the failed tick is reported')
  t.match(errors[0], Error)

  await driver.close()
  mock.timers.tick(5000)
  t.equal(calls, 3, 'no tick after close')
  await t.rejects(real(), { code: 'unavailable' }, 'a collection asked for after close is refused')
})

t.test('NOSCRIPT: scripts reload after SCRIPT FLUSH', async (t) => {
  for (const query of ['durability=fast', 'durability=fast&auto_pipelining=true']) {
    const clock = manualClock()
    const driver = await openRedisDriver(t, server, { query, clock })
    const redis = rawClient(t, server)
    const ref = fresh()
    await driver.postMessages(ref, bodies(2), postOpts())
    await redis.script('FLUSH')
    const ids = await driver.postMessages(ref, bodies(2), postOpts())
    t.equal(ids.length, 2, `post after flush (${query})`)
    t.equal((await driver.createClaim(ref, CLAIM))?.messages.length, 4, `claim after flush (${query})`)
    await redis.script('FLUSH')
    const results = await Promise.all([driver.stats(ref), driver.listMessages(ref, listOpts()), driver.getMessages(ref, ids)])
    t.equal(results[0].total, 4, `several scripts in one pipeline after flush (${query})`)
  }
})

t.test('Scripts.together: script calls started inside it leave in one write', async (t) => {
  const redis = rawClient(t, server)
  await redis.ping()
  const scripts = new Scripts(redis)
  await scripts.load()
  const stream = (redis as unknown as { stream: { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void } }).stream
  const writes = { one: 0, many: 0 }
  const origWrite = stream._write.bind(stream)
  const origWritev = stream._writev.bind(stream)
  stream._write = (...a) => {
    writes.one++
    origWrite(...a)
  }
  stream._writev = (...a) => {
    writes.many++
    origWritev(...a)
  }
  t.teardown(() => {
    stream._write = origWrite
    stream._writev = origWritev
  })
  const refs = ['a', 'b', 'c'].map((queue) => ({ project: `p-${randomUUID()}`, queue }))
  const calls: Promise<unknown>[] = []
  scripts.together(() => {
    for (const ref of refs) calls.push(scripts.run('getQueue', queueKeys(ref).script, []))
  })
  t.same(writes, { one: 0, many: 1 }, 'three calls, one write')
  await Promise.all(calls)
  writes.one = writes.many = 0
  const apart = refs.map((ref) => scripts.run('getQueue', queueKeys(ref).script, []))
  t.equal(writes.one + writes.many, 3, 'outside it: a write each')
  await Promise.all(apart)
})
