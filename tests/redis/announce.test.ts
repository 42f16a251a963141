/**
 * The Redis driver's post announcements (shared/storage/posted.ts), which wake long-polling
 * waiters and feed WebSocket push on every proxy: posts answered together share one line per
 * queue (a PUBLISH per post cost a Redis command, a socket write and a subscriber message each),
 * and every posted id is still announced, on its own queue's line. Only posts that create their
 * queue, or land while a listener's mark holds (`listen`, lua/listenQueue.lua), are announced.
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { parsePosted, postedChannel } from '../../shared/storage/posted.js'
import { postOpts } from '../contract/suite.js'
import { startRedis, type Teardown } from '../helpers/index.js'
import { manualClock } from '../../shared/clock.js'
import { queueKeys } from '../../worker/storage/redis/keys.js'
import { openRedisDriver, rawClient } from './util.js'

const server = await startRedis(t, { appendfsync: 'everysec' })

/** Every line published on the pool's channel, parsed, in order. */
async function listen(t: Teardown): Promise<{ ref: { project: string; queue: string }; count: number; ids: string[] }[]> {
  const sub = rawClient(t, server)
  const lines: { ref: { project: string; queue: string }; count: number; ids: string[] }[] = []
  sub.on('message', (_ch: string, line: string) => {
    const p = parsePosted(line)
    if (p) lines.push(p)
  })
  await sub.subscribe(postedChannel(0))
  return lines
}

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

t.test('posts answered together: one announcement per queue, with every id', async (t) => {
  const lines = await listen(t)
  const driver = await openRedisDriver(t, server, { query: 'durability=fast' })
  const project = `p-${randomUUID()}`
  const a = { project, queue: 'a' }
  const b = { project, queue: 'b' }
  // Eight posts to a and three to b in one turn: coalesced into one script call per queue.
  const posts = [
    ...Array.from({ length: 8 }, (_, i) => driver.postMessages(a, [{ body: `"a${i}"` }, { body: `"a${i}'"` }], postOpts())),
    ...Array.from({ length: 3 }, (_, i) => driver.postMessages(b, [{ body: `"b${i}"` }], postOpts())),
  ]
  const ids = await Promise.all(posts)
  const idsA = ids.slice(0, 8).flat()
  const idsB = ids.slice(8).flat()
  // A later post to another queue, announced after those on the same connection: once its line
  // is in, every line of the batch above is too.
  const last = await driver.postMessages({ project, queue: 'c' }, [{ body: '"c"' }], postOpts())
  await until('the last announcement', () => lines.some((l) => l.ids.includes(last[0])))
  const of = (q: string) => lines.filter((l) => l.ref.project === project && l.ref.queue === q)
  t.equal(of('a').length, 1, 'one line for the eight posts to a')
  t.equal(of('b').length, 1, 'one line for the three posts to b')
  t.equal(of('a')[0]?.count, 16, 'the count is every message posted to a')
  t.same([...(of('a')[0]?.ids ?? [])].sort(), [...idsA].sort(), 'every id posted to a, only those')
  t.equal(of('b')[0]?.count, 3)
  t.same([...(of('b')[0]?.ids ?? [])].sort(), [...idsB].sort(), 'every id posted to b, only those')
})

t.test('posts in turns apart are announced apart', async (t) => {
  const lines = await listen(t)
  const driver = await openRedisDriver(t, server, { query: 'durability=fast' })
  const ref = { project: `p-${randomUUID()}`, queue: 'q' }
  const first = await driver.postMessages(ref, [{ body: '1' }], postOpts())
  await until('the first announcement', () => lines.some((l) => l.ids.includes(first[0])))
  await driver.listen(ref, 60_000)
  const second = await driver.postMessages(ref, [{ body: '2' }], postOpts())
  await until('the second announcement', () => lines.some((l) => l.ids.includes(second[0])))
  t.same(
    lines.filter((l) => l.ref.project === ref.project).map((l) => [l.count, l.ids]),
    [
      [1, first],
      [1, second],
    ],
  )
})

/** Posts one message to `ref`, then one to a fresh queue; true if the first was announced (the second always is: it creates its queue, and lines arrive in order). */
async function announced(driver: Awaited<ReturnType<typeof openRedisDriver>>, lines: Awaited<ReturnType<typeof listen>>, ref: { project: string; queue: string }): Promise<boolean> {
  const [id] = await driver.postMessages(ref, [{ body: '"x"' }], postOpts())
  const [probe] = await driver.postMessages({ project: ref.project, queue: `probe-${randomUUID()}` }, [{ body: '"p"' }], postOpts())
  await until('the probe announcement', () => lines.some((l) => l.ids.includes(probe!)))
  return lines.some((l) => l.ids.includes(id!))
}

t.test('a post is announced only while a listener marks its queue, or when it creates the queue', async (t) => {
  const lines = await listen(t)
  const clock = manualClock(Date.now())
  const driver = await openRedisDriver(t, server, { query: 'durability=fast', clock })
  const ref = { project: `p-${randomUUID()}`, queue: 'q' }
  const created = await driver.postMessages(ref, [{ body: '1' }], postOpts())
  await until('the announcement of the post that created the queue', () => lines.some((l) => l.ids.includes(created[0]!)))
  t.notOk(await announced(driver, lines, ref), 'no listener: not announced')
  await driver.listen(ref, 30_000)
  t.ok(await announced(driver, lines, ref), 'marked for 30 s: announced')
  clock.advance(20_000)
  await driver.listen(ref, 5_000)
  clock.advance(9_000)
  t.ok(await announced(driver, lines, ref), 'a shorter mark does not cut a longer one short (29 s of 30)')
  clock.advance(2_000)
  t.notOk(await announced(driver, lines, ref), 'the mark lapsed: not announced')
  await driver.listen(ref, 1_000)
  t.ok(await announced(driver, lines, ref), 'marked again: announced')
})

t.test('a listener on a queue not created yet: the queue is not created, its posts are announced once it is', async (t) => {
  const lines = await listen(t)
  const driver = await openRedisDriver(t, server, { query: 'durability=fast' })
  const project = `p-${randomUUID()}`
  const ref = { project, queue: 'ghost' }
  await driver.listen(ref, 60_000)
  t.equal(await driver.getQueue(ref), null, 'no queue')
  t.same((await driver.listQueues(project, { limit: 10 })).items, [], 'not listed')
  const raw = rawClient(t, server)
  const keys = await raw.keys(`*${project}*`)
  t.same(keys, [queueKeys(ref).l], 'the mark is the only key written')
  const ttl = await raw.pttl(queueKeys(ref).l)
  t.ok(ttl > 60_000 && ttl <= 120_000, `the mark expires on its own a minute after it lapses (PTTL ${ttl})`)
  const created = await driver.postMessages(ref, [{ body: '1' }], postOpts())
  await until('the creating post', () => lines.some((l) => l.ids.includes(created[0]!)))
  t.ok(await announced(driver, lines, ref), 'the post after it is announced too')
})

t.test("a queue going live on a migration's target is announced without a mark", async (t) => {
  const lines = await listen(t)
  const driver = await openRedisDriver(t, server, { query: 'durability=fast' })
  const ref = { project: `p-${randomUUID()}`, queue: 'moved-in' }
  await driver.postMessages(ref, [{ body: '1' }], postOpts())
  t.notOk(await announced(driver, lines, ref), 'before: no listener, not announced')
  await driver.fenceQueue(ref, { token: 'm1', to: '', state: 'importing' }, null)
  await driver.fenceQueue(ref, null, 'm1')
  t.ok(await announced(driver, lines, ref), 'after the importing fence is lifted: announced (listeners parked on the pool it left)')
  const other = { project: ref.project, queue: 'journalled' }
  await driver.postMessages(other, [{ body: '1' }], postOpts())
  await driver.fenceQueue(other, { token: 'm2', to: 'b', state: 'journal' }, null)
  await driver.fenceQueue(other, null, 'm2')
  t.notOk(await announced(driver, lines, other), 'a source whose migration was abandoned gets no mark')
})
