/**
 * The Redis driver's expiry marks (lua/lib.lua, "Expiry marks"): messages posted in rising expiry
 * are not written to the expiry index `e`; one mark per run of them in `t` (member: the run's last
 * seq, score: its expiry) stands for them, and the others (an expiry below the last mark's, one
 * moved by a claim or a renewal) go to `e` and to `s` (by seq). Totals must stay exact whatever
 * garbage collection has or has not done yet, so checked here:
 * - which index each message lands in (posts of one TTL, falling TTLs, large posts written in
 *   chunks, claims and renewals extending a covered message), and stats' totals at clock points
 *   on both sides of every expiry, before and after `collectGarbage`, which removes the expired
 *   covered messages and drops the marks that cover nothing any more — also one small bounded
 *   step at a time;
 * - a claimed message whose claim extended it outlives its first expiry (stats, getClaim, list);
 * - queue records from before the marks (no `el`: every message in `e`, no `s`, no marks) keep
 *   exact counts, and take the marks once a post finds them empty, or once purged;
 * - purge leaves no marks and no marks' fields behind;
 * - with fast-check, random runs of posts (mixed TTLs, sometimes under a quota), claims,
 *   renewals, releases, deletes (one and bulk, with and without claims), pops, clock steps,
 *   collections (whole or a step), purges and switches to the old layout give the same answers
 *   as the embedded SQLite store (stats, listings with claimed messages, claims), and leave the
 *   Redis indexes consistent with the records after every step (`violations`: e and s in step,
 *   every covered message expiring at its mark's score, ...). FC_SEED replays a run, FC_RUNS
 *   searches longer.
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
import type { Claim, DataDriver, Message, QueueRef, QueueStats } from '../../shared/storage/contract.js'
import { queueKeys } from '../../worker/storage/redis/keys.js'
import { SqliteDriver } from '../../worker/storage/sqlite/driver.js'
import { listOpts, postOpts, type TapTest } from '../contract/suite.js'
import { startRedis } from '../helpers/index.js'
import { openRedisDriver, rawClient } from './util.js'

const server = await startRedis(t, { appendfsync: 'everysec' })
const SECOND = 1000
/** A fixed start: the runs do not depend on the day they run. */
const START = Date.UTC(2026, 0, 1)
/** The fields of the queue record that belong to the expiry marks. */
const MARK_FIELDS = ['el', 'emax', 'em', 'eb', 'ec'] as const
/** Every queue each collectGarbage() call visits, whatever the server holds, at once. */
const GC = { gcQueuesPerTick: 100_000, gcBudgetMs: 600_000 }

/** One stored message record, as lib.lua's R_* fields have it (0-based here). */
interface Rec {
  seq: number
  ttl: number
  expires: number
  claimId: string
  claimExpires: number
}

function decodeRec(raw: Buffer): Rec {
  const f = decode(raw) as unknown[]
  return { seq: Number(f[0]), ttl: Number(f[2]), expires: Number(f[3]), claimId: String(f[6]), claimExpires: Number(f[7]) }
}

/**
 * Rewrites a queue into the layout from before the marks: every message in `e` with its record's
 * expiry, no `s`, no marks, no marks' fields on the record. Returns how many messages it holds.
 */
async function toOldLayout(raw: Redis, ref: QueueRef): Promise<number> {
  const k = queueKeys(ref)
  const ids = await raw.zrange(k.a, 0, -1)
  for (const id of ids) {
    const rec = await raw.hgetBuffer(k.m, id)
    if (rec === null) continue
    await raw.zadd(k.e, String(decodeRec(rec).expires), id)
  }
  await raw.del(k.s, k.t)
  await raw.hdel(k.q, ...MARK_FIELDS)
  return ids.length
}

/** What the Redis store holds for one queue: indexes with scores, records, the queue record. */
interface Layout {
  a: Map<string, number>
  e: Map<string, number>
  s: Map<string, number>
  /** The marks in score order: [member (seq text), score]. */
  t: [string, number][]
  m: Map<string, Rec>
  q: Record<string, string>
}

const scored = (flat: string[]): [string, number][] => {
  const out: [string, number][] = []
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!, Number(flat[i + 1])])
  return out
}

async function layout(raw: Redis, ref: QueueRef): Promise<Layout> {
  const k = queueKeys(ref)
  const [a, e, s, tm, m, q] = await Promise.all([
    raw.zrange(k.a, 0, -1, 'WITHSCORES'),
    raw.zrange(k.e, 0, -1, 'WITHSCORES'),
    raw.zrange(k.s, 0, -1, 'WITHSCORES'),
    raw.zrange(k.t, 0, -1, 'WITHSCORES'),
    raw.hgetallBuffer(k.m),
    raw.hgetall(k.q),
  ])
  const recs = new Map<string, Rec>()
  for (const [id, buf] of Object.entries(m)) recs.set(id, decodeRec(buf))
  return { a: new Map(scored(a)), e: new Map(scored(e)), s: new Map(scored(s)), t: scored(tm), m: recs, q }
}

/**
 * What is wrong with the queue's indexes (empty when nothing): the rules of lib.lua's "Expiry
 * marks", checked against the records. Both layouts: a record per message of `a`, `e` scored by
 * the record's expiry, `s` a subset of `e` scored by seq. Old layout (no `el`): every message in
 * `e`, no marks. Marks: `s` and `e` the same members; marks rising in member and in score (a run
 * of one expiry has one mark); the record's emax / em the last mark (absent with no mark); every
 * covered message (in `a`, not in `e`) past `eb` and expiring exactly at the score of the first
 * mark at or above it.
 */
function violations(l: Layout): string[] {
  const out: string[] = []
  if (l.m.size !== l.a.size) out.push(`${l.m.size} records for ${l.a.size} messages in a`)
  for (const [id, seq] of l.a) {
    const rec = l.m.get(id)
    if (rec === undefined) out.push(`${id}: in a without a record`)
    else if (rec.seq !== seq) out.push(`${id}: a scores ${seq}, the record's seq is ${rec.seq}`)
  }
  for (const [id, exp] of l.e) {
    const rec = l.m.get(id)
    if (!l.a.has(id)) out.push(`${id}: in e, not in a`)
    else if (rec !== undefined && rec.expires !== exp) out.push(`${id}: e scores ${exp}, the record expires at ${rec.expires}`)
  }
  for (const [id, seq] of l.s) {
    if (!l.e.has(id)) out.push(`${id}: in s, not in e`)
    if (l.a.has(id) && l.a.get(id) !== seq) out.push(`${id}: s scores ${seq}, a ${l.a.get(id)}`)
  }
  if (l.q.el === undefined) {
    for (const id of l.a.keys()) if (!l.e.has(id)) out.push(`old layout: ${id} not in e`)
    if (l.t.length > 0) out.push(`old layout: ${l.t.length} marks`)
    return out
  }
  for (const id of l.e.keys()) if (!l.s.has(id)) out.push(`${id}: in e, not in s`)
  for (let i = 1; i < l.t.length; i++) {
    const [pm, ps] = l.t[i - 1]!
    const [m, s] = l.t[i]!
    if (!(Number(m) > Number(pm)) || !(s > ps)) out.push(`marks not rising: ${pm}@${ps} then ${m}@${s}`)
  }
  const last = l.t.at(-1)
  if (last === undefined) {
    if (l.q.emax !== undefined || l.q.em !== undefined) out.push(`no mark, but emax ${l.q.emax} em ${l.q.em}`)
  } else if (Number(l.q.emax) !== last[1] || l.q.em !== last[0]) {
    out.push(`last mark ${last[0]}@${last[1]}, but emax ${l.q.emax} em ${l.q.em}`)
  }
  const eb = l.q.eb === undefined ? undefined : Number(l.q.eb)
  for (const [id, seq] of l.a) {
    if (l.e.has(id)) continue
    const rec = l.m.get(id)
    if (eb !== undefined && seq <= eb) out.push(`${id}: covered at seq ${seq}, at or below eb ${eb}`)
    const mark = l.t.find(([m]) => Number(m) >= seq)
    if (mark === undefined) out.push(`${id}: covered at seq ${seq}, no mark at or above it`)
    else if (rec !== undefined && mark[1] !== rec.expires) out.push(`${id}: covered by the mark ${mark[0]}@${mark[1]}, expires at ${rec.expires}`)
  }
  return out
}

const bodiesOf = (msgs: { body: string }[] | null | undefined): string[] => (msgs ?? []).map((m) => m.body)
const counts = ({ total, claimed, free }: QueueStats) => ({ total, claimed, free })

/** Every message the listing walk returns, claimed ones included, following `next` to the end. */
async function listAll(d: DataDriver, ref: QueueRef): Promise<Message[]> {
  const out: Message[] = []
  let marker: string | undefined
  for (let pages = 0; pages < 50; pages++) {
    const page = await d.listMessages(ref, listOpts({ limit: 20, ...(marker === undefined ? {} : { marker }) }))
    out.push(...page.items)
    if (page.next === undefined) return out
    marker = page.next
  }
  throw new Error('the listing did not end in 50 pages')
}

/** A durability=fast driver on a manual clock, a raw client, and a fresh queue with its keys. */
async function setup(t: TapTest) {
  const clock = manualClock(START)
  const driver = await openRedisDriver(t, server, { query: 'durability=fast', clock, ...GC })
  const ref = { project: `p-${randomUUID()}`, queue: 'q' }
  const raw = rawClient(t, server)
  const k = queueKeys(ref)
  /** The queue's indexes, with the rules checked (a failed assertion names what broke). */
  const look = async (what: string): Promise<Layout> => {
    const l = await layout(raw, ref)
    t.same(violations(l), [], `${what}: the indexes agree with the records`)
    return l
  }
  /** The queue's total, claimed and free at the clock's time `at` (ms after START). */
  const statsAt = async (at: number) => {
    clock.set(START + at)
    return counts(await driver.stats(ref))
  }
  return { clock, driver, raw, ref, k, look, statsAt }
}

const msgs = (n: number, ttl: number, from = 0) => Array.from({ length: n }, (_, i) => ({ body: `"${from + i}"`, ttl }))

t.test('posts of one TTL in order: no e or s entry, one mark per expiry; exact totals, then collected', async (t) => {
  const { clock, driver, ref, look, statsAt } = await setup(t)
  const first = await driver.postMessages(ref, msgs(3, 60), postOpts())
  let l = await look('one post')
  t.same([l.e.size, l.s.size], [0, 0], 'nothing in e or s')
  t.same(l.t, [[String(l.a.get(first[2]!)), START + 60 * SECOND]], 'one mark: the last seq, scored by the expiry')
  const second = await driver.postMessages(ref, msgs(2, 60, 3), postOpts())
  l = await look('a second post, same expiry')
  const firstRunEnd = l.a.get(second[1]!)!
  t.same(l.t, [[String(l.a.get(second[1]!)), START + 60 * SECOND]], 'the same expiry: the mark moved up to the new run end')
  clock.advance(10 * SECOND)
  const third = await driver.postMessages(ref, msgs(2, 60, 5), postOpts())
  l = await look('a post 10 s later')
  t.same(l.t.map(([, s]) => s), [START + 60 * SECOND, START + 70 * SECOND], 'a mark per distinct expiry')
  t.equal(l.t[1]![0], String(l.a.get(third[1]!)))
  t.same([l.e.size, l.s.size, l.a.size], [0, 0, 7])
  t.equal(l.q.el, '1', 'a new queue has the marks')

  t.same(await statsAt(60 * SECOND - 1), { total: 7, claimed: 0, free: 7 }, 'just before the first expiry')
  t.same(await statsAt(60 * SECOND), { total: 2, claimed: 0, free: 2 }, 'at the first expiry: five gone, no GC yet')
  l = await look('expired, not collected')
  t.equal(l.m.size, 7, 'the expired messages are still stored')
  t.same(bodiesOf(await listAll(driver, ref)), ['"5"', '"6"'], 'and not listed')
  t.same(await statsAt(70 * SECOND), { total: 0, claimed: 0, free: 0 }, 'at the second expiry, no GC yet')
  t.same(await statsAt(65 * SECOND), { total: 2, claimed: 0, free: 2 }, 'back between the two')

  const gc = await driver.collectGarbage()
  t.ok(gc.messages >= 5, `the collector removed the five expired messages (${gc.messages})`)
  l = await look('collected at 65 s')
  t.same([...l.a.keys()].sort(), [...third].sort(), 'only the last post is left in a')
  t.same([...l.m.keys()].sort(), [...third].sort(), 'and in m')
  t.same(l.t.map(([, s]) => s), [START + 70 * SECOND], 'the first mark covers nothing any more: dropped')
  t.equal(l.q.eb, String(firstRunEnd), 'eb stands for it: the dropped mark')
  t.same(await statsAt(65 * SECOND), { total: 2, claimed: 0, free: 2 }, 'the same total after GC')
  t.same(await statsAt(70 * SECOND), { total: 0, claimed: 0, free: 0 })
  await driver.collectGarbage()
  l = await look('collected at 70 s')
  t.same([l.a.size, l.m.size, l.t.length], [0, 0, 0], 'everything gone, marks included')
  for (const f of ['emax', 'em', 'eb', 'ec']) t.equal(l.q[f], undefined, `an empty queue has no ${f}`)
  t.same(counts(await driver.stats(ref)), { total: 0, claimed: 0, free: 0 })
  const [after] = await driver.postMessages(ref, msgs(1, 60, 7), postOpts())
  l = await look('a post after')
  t.same(l.t, [[String(l.a.get(after!)), START + 130 * SECOND]], 'the marks start afresh')
  t.same(counts(await driver.stats(ref)), { total: 1, claimed: 0, free: 1 })
  await driver.deleteQueue(ref)
})

t.test('falling TTLs: the later, shorter ones go to e and s; totals exact around every expiry', async (t) => {
  const { clock, driver, ref, look, statsAt } = await setup(t)
  const [long1] = await driver.postMessages(ref, msgs(1, 3600), postOpts())
  const short = await driver.postMessages(ref, msgs(2, 60, 1), postOpts())
  let l = await look('3600 s, then 60 s')
  t.same(l.t.map(([, s]) => s), [START + 3600 * SECOND], 'one mark: the long message')
  t.same([...l.e.keys()].sort(), [...short].sort(), 'the short ones in e')
  t.same([...l.s.keys()].sort(), [...short].sort(), 'and in s')
  for (const id of short) t.equal(l.s.get(id), l.a.get(id), 's scores by seq')
  for (const id of short) t.equal(l.e.get(id), START + 60 * SECOND, 'e scores by expiry')
  t.notOk(l.e.has(long1!), 'the long one is covered')
  clock.advance(30 * SECOND)
  const [mid] = await driver.postMessages(ref, msgs(1, 60, 3), postOpts())
  const [long2] = await driver.postMessages(ref, msgs(1, 3600, 4), postOpts())
  l = await look('30 s later: 60 s, then 3600 s')
  t.ok(l.e.has(mid!) && l.s.has(mid!), 'below the last mark: e and s')
  t.notOk(l.e.has(long2!), 'above it: covered')
  t.same(l.t.map(([, s]) => s), [START + 3600 * SECOND, START + 3630 * SECOND])

  // Expiries: short at 60 s, mid at 90 s, long1 at 3600 s, long2 at 3630 s.
  const expect: [number, number][] = [
    [0, 5], [60 * SECOND - 1, 5], [60 * SECOND, 3], [90 * SECOND - 1, 3], [90 * SECOND, 2],
    [3600 * SECOND - 1, 2], [3600 * SECOND, 1], [3630 * SECOND - 1, 1], [3630 * SECOND, 0],
  ]
  for (const [at, total] of expect) t.same(await statsAt(at), { total, claimed: 0, free: total }, `at ${at} ms, no GC`)
  // The same points again, collecting at each on the way up.
  for (const [at, total] of expect) {
    clock.set(START + at)
    await driver.collectGarbage()
    t.same(counts(await driver.stats(ref)), { total, claimed: 0, free: total }, `at ${at} ms, after GC`)
    l = await look(`GC at ${at} ms`)
    t.equal(l.a.size, total, `at ${at} ms the collector left exactly the unexpired messages`)
    t.same(bodiesOf(await listAll(driver, ref)).length, total, 'all of them listed')
  }
  l = await look('the end')
  t.same([l.a.size, l.e.size, l.s.size, l.t.length, l.m.size], [0, 0, 0, 0, 0])
  await driver.deleteQueue(ref)
})

t.test('a claim or a renewal extending a covered message moves it to e and s; it outlives its first expiry', async (t) => {
  const { clock, driver, ref, look, statsAt } = await setup(t)
  const ids = await driver.postMessages(ref, msgs(3, 60), postOpts())
  const a = await driver.createClaim(ref, { ttl: 120, grace: 60, limit: 1 })
  t.same(a?.messages.map((m) => [m.id, m.ttl]), [[ids[0], 180]], 'the claim (120 s) outlives the message (60 s): its TTL becomes 120 + 60')
  const b = await driver.createClaim(ref, { ttl: 30, grace: 0, limit: 1 })
  t.same(b?.messages.map((m) => [m.id, m.ttl]), [[ids[1], 60]], 'a claim of 30 s extends nothing')
  let l = await look('claimed')
  t.same([...l.e.keys()], [ids[0]], 'the extended message alone is in e')
  t.equal(l.e.get(ids[0]!), START + 180 * SECOND, 'at its new expiry')
  t.same([...l.s.entries()], [[ids[0], l.a.get(ids[0]!)]], 'and in s at its seq')

  clock.advance(20 * SECOND)
  await driver.renewClaim(ref, b!.id, { ttl: 120, grace: 60 })
  l = await look('renewed at 20 s')
  t.same([...l.e.keys()].sort(), [ids[0], ids[1]].sort(), 'the renewal extended the second message: e')
  t.equal(l.e.get(ids[1]!), START + 200 * SECOND)
  t.ok(l.s.has(ids[1]!), 'and s')
  t.notOk(l.e.has(ids[2]!), 'the unclaimed one stays covered')

  const check = async (at: number, total: number, claimed: number, held: string[][]) => {
    t.same(await statsAt(at), { total, claimed, free: total - claimed }, `at ${at / SECOND} s`)
    const got = await Promise.all([driver.getClaim(ref, a!.id), driver.getClaim(ref, b!.id)])
    t.same(got.map((c) => c?.messages.map((m) => m.id) ?? null), held.map((h) => (h.length === 0 ? null : h)), `at ${at / SECOND} s, the claims hold`)
    return listAll(driver, ref)
  }
  t.same((await check(59 * SECOND, 3, 2, [[ids[0]!], [ids[1]!]])).map((m) => m.id), ids)
  const at60 = await check(60 * SECOND, 2, 2, [[ids[0]!], [ids[1]!]])
  t.same(at60.map((m) => [m.id, m.claimId]), [[ids[0], a!.id], [ids[1], b!.id]], 'past the original expiry: both listed, claimed')
  await driver.collectGarbage()
  l = await look('GC at 60 s')
  t.same([...l.a.keys()], [ids[0], ids[1]], 'the collector removed the covered, expired message only')
  t.same((await check(60 * SECOND, 2, 2, [[ids[0]!], [ids[1]!]])).map((m) => m.id), [ids[0], ids[1]], 'the same after GC')
  // Claim a expires at 120 s, message 0 at 180 s; claim b at 140 s, message 1 at 200 s.
  t.same((await check(120 * SECOND, 2, 1, [[], [ids[1]!]])).map((m) => m.claimId), [undefined, b!.id])
  t.same((await check(180 * SECOND, 1, 0, [[], []])).map((m) => m.id), [ids[1]])
  await driver.collectGarbage()
  t.same((await check(199 * SECOND, 1, 0, [[], []])).map((m) => m.id), [ids[1]])
  t.same((await check(200 * SECOND, 0, 0, [[], []])).map((m) => m.id), [])
  await driver.collectGarbage()
  l = await look('GC at 200 s')
  t.same([l.a.size, l.e.size, l.s.size, l.t.length, l.m.size], [0, 0, 0, 0, 0])
  await driver.deleteQueue(ref)
})

t.test('a queue stored before the marks keeps exact counts, and takes the marks once empty', async (t) => {
  const { clock, driver, raw, ref, k, look } = await setup(t)
  const early = await driver.postMessages(ref, msgs(4, 60), postOpts())
  const [late] = await driver.postMessages(ref, msgs(1, 300, 4), postOpts())
  const c = await driver.createClaim(ref, { ttl: 30, grace: 0, limit: 1 })
  t.same(bodiesOf(c?.messages), ['"0"'])
  t.equal(await toOldLayout(raw, ref), 5)
  let l = await look('old layout')
  t.same([l.e.size, l.s.size, l.t.length, l.q.el], [5, 0, 0, undefined], 'every message in e, no s, no marks, no el')
  t.same(counts(await driver.stats(ref)), { total: 5, claimed: 1, free: 4 })

  clock.advance(10 * SECOND)
  const more = await driver.postMessages(ref, msgs(2, 60, 5), postOpts())
  l = await look('a post to the old layout')
  t.equal(l.q.el, undefined, 'a queue holding messages keeps its layout')
  t.same([l.e.size, l.t.length], [7, 0], 'the new messages are in e, no mark')
  t.same(counts(await driver.stats(ref)), { total: 7, claimed: 1, free: 6 })
  const d = await driver.createClaim(ref, { ttl: 100, grace: 20, limit: 1 })
  t.same(d?.messages.map((m) => [m.body, m.ttl]), [['"1"', 120]], 'a claim extends a message of the old layout')
  l = await look('claimed in the old layout')
  t.equal(l.e.get(early[1]!), START + 130 * SECOND)

  clock.set(START + 60 * SECOND)
  t.same(counts(await driver.stats(ref)), { total: 4, claimed: 1, free: 3 }, 'at 60 s: three of the first four gone (the claimed one extended)')
  clock.set(START + 70 * SECOND)
  t.same(counts(await driver.stats(ref)), { total: 2, claimed: 1, free: 1 }, 'at 70 s: the second post gone too')
  await driver.collectGarbage()
  l = await look('GC in the old layout')
  t.same([...l.a.keys()], [early[1], late], 'the collector removed the expired messages of e')
  t.same(counts(await driver.stats(ref)), { total: 2, claimed: 1, free: 1 })
  t.equal(l.q.el, undefined)
  t.same(more.length, 2)

  await driver.postMessages(ref, msgs(1, 30, 7), postOpts())
  t.equal(await raw.hget(k.q, 'el'), null, 'still not empty: still the old layout')
  t.same(counts(await driver.stats(ref)), { total: 3, claimed: 1, free: 2 })
  t.same(bodiesOf(await driver.popMessages(ref, 5)), ['"4"', '"7"'], 'the free ones popped')
  await driver.deleteMessage(ref, early[1]!, d!.id)
  l = await look('emptied')
  t.same([l.a.size, l.e.size, l.s.size, l.q.el], [0, 0, 0, undefined], 'empty, the layout unchanged until the next post')
  const fresh = await driver.postMessages(ref, msgs(3, 60, 8), postOpts())
  l = await look('the first post to the emptied queue')
  t.equal(l.q.el, '1', 'the queue took the marks')
  t.same([l.e.size, l.s.size], [0, 0], 'its messages are covered')
  t.same(l.t, [[String(l.a.get(fresh[2]!)), START + 130 * SECOND]])
  t.same(counts(await driver.stats(ref)), { total: 3, claimed: 0, free: 3 })
  clock.set(START + 130 * SECOND)
  t.same(counts(await driver.stats(ref)), { total: 0, claimed: 0, free: 0 })
  await driver.deleteQueue(ref)
})

t.test('purge: no marks, e or s left, the marks afresh (old layout included); posting again counts right', async (t) => {
  const { clock, driver, raw, ref, look } = await setup(t)
  await driver.postMessages(ref, msgs(3, 60), postOpts())
  clock.advance(SECOND)
  await driver.postMessages(ref, msgs(2, 120, 3), postOpts())
  await driver.postMessages(ref, msgs(1, 30, 5), postOpts())
  clock.advance(60 * SECOND)
  await driver.collectGarbage()
  t.same(bodiesOf(await driver.createClaim(ref, { ttl: 120, grace: 10, limit: 1 }).then((c) => c?.messages)), ['"3"'])
  let l = await look('before the purge')
  for (const f of MARK_FIELDS) t.not(l.q[f], undefined, `the record has ${f} before the purge`)
  t.same([l.e.size, l.s.size, l.t.length], [1, 1, 1], 'the claimed message in e and s, one mark left')
  t.same(counts(await driver.stats(ref)), { total: 2, claimed: 1, free: 1 })

  await driver.purge(ref)
  l = await look('purged')
  t.same([l.a.size, l.m.size, l.e.size, l.s.size, l.t.length], [0, 0, 0, 0, 0], 'every index empty')
  t.equal(l.q.el, '1', 'el kept')
  for (const f of ['emax', 'em', 'eb', 'ec']) t.equal(l.q[f], undefined, `no ${f}`)
  t.same(counts(await driver.stats(ref)), { total: 0, claimed: 0, free: 0 })
  await driver.postMessages(ref, msgs(2, 3600, 6), postOpts())
  await driver.postMessages(ref, msgs(1, 60, 8), postOpts())
  l = await look('posted after the purge')
  t.same([l.t.length, l.e.size], [1, 1], 'a new mark; the shorter message in e')
  t.same(counts(await driver.stats(ref)), { total: 3, claimed: 0, free: 3 })

  t.equal(await toOldLayout(raw, ref), 3)
  t.same(counts(await driver.stats(ref)), { total: 3, claimed: 0, free: 3 }, 'the old layout counts the same')
  await driver.purge(ref)
  l = await look('the old layout purged')
  t.equal(l.q.el, '1', 'a purge gives the old layout the marks')
  t.same([l.a.size, l.e.size, l.s.size, l.t.length], [0, 0, 0, 0])
  const ids = await driver.postMessages(ref, msgs(2, 60, 9), postOpts())
  l = await look('posted after')
  t.same(l.t, [[String(l.a.get(ids[1]!)), clock() + 60 * SECOND]], 'covered by a mark')
  t.same(counts(await driver.stats(ref)), { total: 2, claimed: 0, free: 2 })
  clock.advance(60 * SECOND)
  t.same(counts(await driver.stats(ref)), { total: 0, claimed: 0, free: 0 })
  await driver.deleteQueue(ref)
})

t.test('a large post (staged in chunks): one mark for its run, the shorter messages in e and s', async (t) => {
  const { clock, driver, ref, look, statsAt } = await setup(t)
  // 300 messages: more than POST_CHUNK, so written in chunks; every 50th one shorter.
  const batch = Array.from({ length: 300 }, (_, i) => ({ body: `"${i}"`, ttl: i % 50 === 49 ? 60 : 120 }))
  const ids = await driver.postMessages(ref, batch, postOpts())
  let l = await look('a large post')
  t.same(l.t, [[String(l.a.get(ids[298]!)), START + 120 * SECOND]], 'one mark, at the last covered message')
  t.same([...l.e.keys()].sort(), ids.filter((_, i) => i % 50 === 49).sort(), 'the shorter ones in e')
  t.equal(l.s.size, 6, 'and s')
  t.same(await statsAt(0), { total: 300, claimed: 0, free: 300 })
  const more = await driver.postMessages(ref, msgs(200, 120, 300), postOpts())
  l = await look('a second large post, same expiry')
  t.same(l.t, [[String(l.a.get(more[199]!)), START + 120 * SECOND]], 'still one mark')
  t.same(await statsAt(60 * SECOND), { total: 494, claimed: 0, free: 494 })
  t.same(await statsAt(120 * SECOND), { total: 0, claimed: 0, free: 0 })
  clock.set(START + 60 * SECOND)
  await driver.collectGarbage()
  l = await look('collected at 60 s')
  t.same([l.a.size, l.e.size, l.s.size, l.t.length], [494, 0, 0, 1])
  clock.set(START + 120 * SECOND)
  await driver.collectGarbage()
  l = await look('collected at 120 s')
  t.same([l.a.size, l.m.size, l.t.length], [0, 0, 0])
  await driver.deleteQueue(ref)
})

t.test('a backlog that never empties: one collector tick drops every mark below the oldest message, however many steps that takes', async (t) => {
  const { clock, driver, ref, look } = await setup(t)
  // Steps of at most 2, within a generous budget: the tick must go on stepping this queue while
  // a step drops a full step of marks (the driver's loop), not leave the rest for later ticks.
  const collector = await openRedisDriver(t, server, { query: 'durability=fast', clock, gcStep: 2, ...GC })
  const early: string[] = []
  for (let i = 0; i < 9; i++) {
    early.push(...(await driver.postMessages(ref, msgs(1, 3600, i), postOpts())))
    clock.advance(1)
  }
  const [kept] = await driver.postMessages(ref, msgs(1, 3600, 9), postOpts())
  let l = await look('ten posts, a ms apart')
  t.equal(l.t.length, 10, 'one mark per post: each a ms later')
  await driver.deleteMessages(ref, early)
  await collector.collectGarbage()
  l = await look('consumed but the last, collected once')
  t.same(l.t, [[String(l.a.get(kept!)), START + 9 + 3600 * SECOND]], 'only the mark of the message left')
  t.same(counts(await driver.stats(ref)), { total: 1, claimed: 0, free: 1 })
  await driver.deleteQueue(ref)
})

t.test('collected a small step at a time: totals exact and the indexes consistent after every step', async (t) => {
  const { clock, driver, ref, look } = await setup(t)
  // One bounded step per call (a budget of 0 ms), of at most 2 entries of each kind, on the next
  // queue of the sweep: this one (every subtest deletes its queue at the end).
  const stepper = await openRedisDriver(t, server, { query: 'durability=fast', clock, gcStep: 2, gcBudgetMs: 0, gcQueuesPerTick: 100_000 })
  // Runs of covered messages (5 marks), each followed by shorter ones in e.
  const live: string[] = []
  for (let i = 0; i < 5; i++) {
    await driver.postMessages(ref, msgs(3, 120, 10 * i), postOpts())
    await driver.postMessages(ref, msgs(1, 60, 10 * i + 5), postOpts())
    clock.advance(10 * SECOND)
  }
  live.push(...(await driver.postMessages(ref, msgs(2, 3600, 100), postOpts())))
  let l = await look('posted')
  t.same([l.t.length, l.e.size, l.a.size], [6, 5, 22])
  // At 155 s the first four runs (120 s from 0, 10, 20, 30 s) and every 60 s message are expired.
  clock.set(START + 155 * SECOND)
  t.same(counts(await driver.stats(ref)), { total: 5, claimed: 0, free: 5 })
  let steps = 0
  for (; steps < 40; steps++) {
    const r = await stepper.collectGarbage()
    l = await look(`GC step ${steps + 1}`)
    t.same(counts(await driver.stats(ref)), { total: 5, claimed: 0, free: 5 }, `the total after step ${steps + 1}`)
    if (r.messages === 0 && l.a.size === 5 && l.t.length === 2) break
  }
  t.ok(steps > 3, `collected in ${steps + 1} steps`)
  t.equal(l.a.size, 5, 'the unexpired messages alone are left')
  t.same([...l.a.keys()].slice(3), live, 'the last post among them')
  t.same(l.t.map(([, s]) => s), [START + 160 * SECOND, START + 3650 * SECOND], 'the marks of the collected runs dropped')
  t.same([l.e.size, l.s.size], [0, 0], 'the expired e entries collected')
  t.same(bodiesOf(await listAll(driver, ref)), ['"40"', '"41"', '"42"', '"100"', '"101"'])
  await driver.deleteQueue(ref)
})

/** One step of a random run, applied to both stores alike. */
type Op =
  | { op: 'post'; ttls: number[]; delays: number[]; max: number }
  | { op: 'claim'; limit: number; ttl: number; grace: number }
  | { op: 'renew'; which: number; ttl: number; grace: number }
  | { op: 'release'; which: number }
  | { op: 'delete'; which: number }
  | { op: 'delete-claimed'; which: number; at: number }
  | { op: 'bulk-delete'; which: number[] }
  | { op: 'bulk-delete-claimed'; which: number; extra: number[] }
  | { op: 'pop'; limit: number }
  | { op: 'advance'; s: number }
  | { op: 'gc'; full: boolean }
  | { op: 'purge' }
  | { op: 'old-layout' }

const TTLS = [60, 120, 300, 3600] as const
const ttlsArb = fc.oneof(
  // Mostly one TTL per post (the marks' case), sometimes one per message.
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...TTLS), fc.integer({ min: 1, max: 4 })).map(([ttl, n]) => Array<number>(n).fill(ttl)) },
  { weight: 1, arbitrary: fc.array(fc.constantFrom(...TTLS), { minLength: 1, maxLength: 4 }) },
)
const claimTtl = fc.integer({ min: 30, max: 300 })
const grace = fc.integer({ min: 0, max: 120 })

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: ttlsArb.chain((ttls) =>
      fc.record({
        op: fc.constant('post' as const),
        ttls: fc.constant(ttls),
        delays: fc.array(fc.constantFrom(0, 0, 0, 0, 0, 20), { minLength: ttls.length, maxLength: ttls.length }),
        // Sometimes a quota (PostOptions.maxMessages), checked against the queue's exact total.
        max: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 2, max: 12 }) }),
      }),
    ),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('claim' as const), limit: fc.integer({ min: 1, max: 5 }), ttl: claimTtl, grace }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('renew' as const), which: fc.nat(), ttl: claimTtl, grace }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('release' as const), which: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), which: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete-claimed' as const), which: fc.nat(), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('bulk-delete' as const), which: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('bulk-delete-claimed' as const), which: fc.nat(), extra: fc.array(fc.nat(), { maxLength: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('pop' as const), limit: fc.integer({ min: 1, max: 3 }) }) },
  {
    weight: 4,
    // Often short steps (past a message's first expiry, not yet past the claim that extended
    // it), and now and then one that gives a later post the expiry of an earlier one (a 120 s
    // message, then 60 s later a 60 s one): the last mark goes on over the new run.
    arbitrary: fc.record({
      op: fc.constant('advance' as const),
      s: fc.oneof(
        { weight: 2, arbitrary: fc.integer({ min: 5, max: 400 }) },
        { weight: 2, arbitrary: fc.integer({ min: 5, max: 90 }) },
        { weight: 1, arbitrary: fc.constantFrom(60, 180, 240) },
      ),
    }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('gc' as const), full: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ op: 'purge' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'old-layout' as const }) },
)

t.test('random runs: the same answers as the embedded store, the indexes consistent, across both layouts', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'missive-marks-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const rclock = manualClock(START)
  const sclock = manualClock(START)
  const redis = await openRedisDriver(t, server, { query: 'durability=fast', clock: rclock, ...GC })
  // The collector a step at a time: one bounded step of at most 2 entries of each kind per call
  // (a budget of 0 ms), on the next queue of the sweep: the run's own, the others being deleted.
  const stepper = await openRedisDriver(t, server, { query: 'durability=fast', clock: rclock, gcStep: 2, gcBudgetMs: 0, gcQueuesPerTick: 100_000 })
  const sqlite = new SqliteDriver({ path: join(dir, 's.sqlite'), durability: 'fast', gcIntervalMs: 0, clock: sclock })
  t.teardown(() => sqlite.close())
  const raw = rawClient(t, server)
  // FC_RUNS: more runs, to search harder (FC_SEED replays one).
  const NUM_RUNS = Number(process.env.FC_RUNS ?? 60)
  // ~0.1 s a run here (2 cores); generous for a loaded machine.
  t.setTimeout(Math.max(60_000, NUM_RUNS * 1000))
  let runs = 0
  let compared = 0
  let extended = 0
  let covered = 0
  let legacyPosts = 0
  let collected = 0
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 10, maxLength: 40 }), async (ops) => {
      runs++
      const ref = { project: `p-${randomUUID()}`, queue: 'q' }
      // Per store: the ids of the messages in posting order, the claims in creation order and,
      // per claim, the ids it took.
      const posted: Record<'r' | 's', string[]> = { r: [], s: [] }
      const index: Record<'r' | 's', Map<string, number>> = { r: new Map(), s: new Map() }
      const claims: Record<'r' | 's', string[]> = { r: [], s: [] }
      const claimIndex: Record<'r' | 's', Map<string, number>> = { r: new Map(), s: new Map() }
      const claimed: Record<'r' | 's', string[][]> = { r: [], s: [] }
      // Each store's ids as the other can compare them: the posting index, the claim index.
      const msg = (side: 'r' | 's', id: string) => index[side].get(id) ?? `? ${id}`
      const cl = (side: 'r' | 's', id: string | undefined) => (id === undefined || id === '' ? null : (claimIndex[side].get(id) ?? `? ${id}`))
      const view = (side: 'r' | 's', m: Message) => [msg(side, m.id), m.body, m.ttl, m.age, m.claimCount, cl(side, m.claimId)]
      const claimView = (side: 'r' | 's', c: Claim | null) => (c === null ? null : { id: cl(side, c.id), ttl: c.ttl, age: c.age, messages: c.messages.map((m) => view(side, m)) })
      const pick = <T>(list: T[], which: number): T | undefined => list[which % Math.max(1, list.length)]
      let n = 0
      // Delays apply on queues with a default delay; every message here carries its own.
      await Promise.all([redis.createQueue(ref, { _default_message_delay: 1 }), sqlite.createQueue(ref, { _default_message_delay: 1 })])
      for (const [at, step] of ops.entries()) {
        const where = `step ${at} ${JSON.stringify(step)} of ${JSON.stringify(ops.slice(0, at))}`
        const both = async <T>(f: (d: DataDriver, side: 'r' | 's') => Promise<T>): Promise<[T | string, T | string]> => {
          const run = (d: DataDriver, side: 'r' | 's') =>
            f(d, side).catch((err: unknown) => `error ${(err as { code?: string }).code ?? String(err)}/${(err as { kind?: string }).kind ?? ''}`)
          return [await run(redis, 'r'), await run(sqlite, 's')]
        }
        let got: [unknown, unknown]
        switch (step.op) {
          case 'post': {
            const batch = step.ttls.map((ttl, i) => ({ body: `"${++n}"`, ttl, delay: step.delays[i]! }))
            const before = await raw.hget(queueKeys(ref).q, 'el')
            got = await both(async (d, side) => {
              const ids = await d.postMessages(ref, batch, postOpts(step.max > 0 ? { maxMessages: step.max } : {}))
              for (const id of ids) index[side].set(id, posted[side].push(id) - 1)
              return ids.length
            })
            if (before === null) legacyPosts++
            break
          }
          case 'claim':
            got = await both(async (d, side) => {
              const c = await d.createClaim(ref, { ttl: step.ttl, grace: step.grace, limit: step.limit })
              if (c === null) return null
              claimIndex[side].set(c.id, claims[side].push(c.id) - 1)
              claimed[side].push(c.messages.map((m) => m.id))
              return claimView(side, c)
            })
            break
          case 'renew':
            got = await both(async (d, side) => {
              const id = pick(claims[side], step.which)
              if (id === undefined) return 'none'
              await d.renewClaim(ref, id, { ttl: step.ttl, grace: step.grace })
              return 'ok'
            })
            break
          case 'release':
            got = await both(async (d, side) => {
              const id = pick(claims[side], step.which)
              if (id !== undefined) await d.releaseClaim(ref, id)
              return 'ok'
            })
            break
          case 'delete':
            got = await both(async (d, side) => {
              const id = pick(posted[side], step.which)
              if (id !== undefined) await d.deleteMessage(ref, id)
              return 'ok'
            })
            break
          case 'delete-claimed':
            // One message a claim took, deleted with that claim's id (by now maybe released,
            // expired, or the message deleted).
            got = await both(async (d, side) => {
              const c = step.which % Math.max(1, claims[side].length)
              const id = pick(claimed[side][c] ?? [], step.at)
              if (id !== undefined) await d.deleteMessage(ref, id, claims[side][c])
              return 'ok'
            })
            break
          case 'bulk-delete':
            got = await both(async (d, side) => {
              const ids = step.which.map((w) => pick(posted[side], w)).filter((id) => id !== undefined)
              if (ids.length > 0) await d.deleteMessages(ref, ids)
              return 'ok'
            })
            break
          case 'bulk-delete-claimed':
            got = await both(async (d, side) => {
              const c = step.which % Math.max(1, claims[side].length)
              const ids = [...(claimed[side][c] ?? []), ...step.extra.map((w) => pick(posted[side], w)).filter((id) => id !== undefined)]
              if (ids.length > 0) await d.deleteMessages(ref, ids, claims[side].slice(c, c + 1))
              return 'ok'
            })
            break
          case 'pop':
            got = await both(async (d, side) =>
              (await d.popMessages(ref, step.limit)).map((m) => [msg(side, m.id), m.body, m.ttl, m.age, m.claimCount]),
            )
            break
          case 'advance':
            rclock.advance(step.s * SECOND)
            sclock.advance(step.s * SECOND)
            got = ['ok', 'ok']
            break
          case 'gc': {
            const r = await (step.full ? redis : stepper).collectGarbage()
            sqlite.collectGarbage()
            collected += r.messages
            got = ['ok', 'ok']
            break
          }
          case 'purge':
            got = await both(async (d) => {
              await d.purge(ref)
              return 'ok'
            })
            break
          case 'old-layout':
            await toOldLayout(raw, ref)
            got = ['ok', 'ok']
            break
        }
        // A difference fails the property: fast-check shrinks the run and reports the smallest.
        if (JSON.stringify(got[0]) !== JSON.stringify(got[1])) throw new Error(`${where}: Redis ${JSON.stringify(got[0])}, SQLite ${JSON.stringify(got[1])}`)
        // Stats (oldest and newest by posting index), the listing with claimed messages, and
        // every claim of the run.
        const state = async (d: DataDriver, side: 'r' | 's') => {
          const st = await d.stats(ref)
          const end = (e: QueueStats['oldest']) => (e === undefined ? null : [msg(side, e.id), e.age])
          const list = (await listAll(d, ref)).map((m) => view(side, m))
          const held = await Promise.all(claims[side].map(async (id) => claimView(side, await d.getClaim(ref, id))))
          return { stats: { ...counts(st), delayed: st.delayed, oldest: end(st.oldest), newest: end(st.newest) }, list, claims: held }
        }
        const [rs, ss] = [await state(redis, 'r'), await state(sqlite, 's')]
        for (const part of ['stats', 'list', 'claims'] as const) {
          if (JSON.stringify(rs[part]) !== JSON.stringify(ss[part])) {
            throw new Error(`${part} after ${where}: Redis ${JSON.stringify(rs[part])}, SQLite ${JSON.stringify(ss[part])}`)
          }
        }
        const l = await layout(raw, ref)
        const bad = violations(l)
        if (bad.length > 0) throw new Error(`Redis indexes after ${where}: ${bad.join('; ')}`)
        if (l.q.el !== undefined) {
          covered += [...l.a.keys()].filter((id) => !l.e.has(id)).length
          extended += [...l.e.keys()].filter((id) => l.m.get(id)?.claimId !== '').length
        }
        compared++
      }
      await Promise.all([redis.deleteQueue(ref), sqlite.deleteQueue(ref)])
    }),
    { numRuns: NUM_RUNS, seed: Number(process.env.FC_SEED ?? Date.now() % 2 ** 31) },
  )
  t.ok(runs >= NUM_RUNS, `${runs} runs, ${compared} steps alike in answers, stats, listings and claims, indexes consistent`)
  t.ok(covered > 0, `the runs had covered messages (${covered} message-steps)`)
  t.ok(extended > 0, `and claimed messages in e (${extended} message-steps)`)
  t.ok(legacyPosts > 0, `and posts to the old layout (${legacyPosts})`)
  t.ok(collected > 0, `and the collector removed messages (${collected})`)
})
