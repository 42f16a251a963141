/**
 * The Redis driver's post announcements (shared/storage/posted.ts), which wake long-polling
 * waiters and feed WebSocket push on every proxy: posts answered together share one line per
 * queue (a PUBLISH per post cost a Redis command, a socket write and a subscriber message each),
 * and every posted id is still announced, on its own queue's line.
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { parsePosted, postedChannel } from '../../shared/storage/posted.js'
import { postOpts } from '../contract/suite.js'
import { startRedis, type Teardown } from '../helpers/index.js'
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
