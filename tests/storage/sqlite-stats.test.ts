/**
 * Queue stats on the embedded store are counted in bounded steps (worker/storage/sqlite/queues.ts,
 * STATS_STEP) with turns of the event loop between them, so that a large queue's count never
 * holds the worker's other requests; the counts stay exact across steps, with other queues'
 * messages interleaved, expired messages and active claims.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { manualClock } from '../../shared/clock.js'
import { SqliteDriver } from '../../worker/storage/sqlite/driver.js'
import { STATS_STEP } from '../../worker/storage/sqlite/queues.js'
import { postOpts } from '../contract/suite.js'

t.test('a queue of several steps: exact stats, and other work runs between the steps', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'missive-stats-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const clock = manualClock()
  const driver = new SqliteDriver({ path: join(dir, 's.sqlite'), durability: 'fast', gcIntervalMs: 0, clock })
  t.teardown(() => driver.close())
  const ref = { project: 'p', queue: 'big' }
  const other = { project: 'p', queue: 'other' }
  const live: string[] = []
  let short = 0
  // 3.5 steps of long-lived messages, with another queue's posts in between (the seqs of one
  // queue are not contiguous) and, after the first step, some short-lived ones that expire.
  for (let i = 0; live.length < STATS_STEP * 3.5; i++) {
    live.push(...(await driver.postMessages(ref, Array.from({ length: 128 }, (_, j) => ({ body: `${i}.${j}`, ttl: 3600 })), postOpts())))
    if (i % 10 === 0) await driver.postMessages(other, [{ body: '"o"' }], postOpts())
    if (i > 100 && i % 25 === 0) {
      await driver.postMessages(ref, Array.from({ length: 7 }, () => ({ body: '"short"', ttl: 60 })), postOpts())
      short += 7
    }
  }
  const claimed = new Set<string>()
  for (let c = 0; c < 3; c++) for (const m of (await driver.createClaim(ref, { ttl: 600, grace: 60, limit: 20 }))!.messages) claimed.add(m.id)
  t.equal(claimed.size, 60)
  t.match(await driver.stats(ref), { total: live.length + short, claimed: 60, free: live.length + short - 60 }, 'before the short ones expire')

  clock.advance(120_000)
  let turns = 0
  let counting = true
  const spin = (): void => {
    if (!counting) return
    turns++
    setImmediate(spin)
  }
  setImmediate(spin)
  const stats = await driver.stats(ref)
  counting = false
  t.match(stats, { total: live.length, claimed: 60, free: live.length - 60 }, 'expired messages are not counted')
  t.equal(stats.oldest?.id, live[0])
  t.equal(stats.newest?.id, live[live.length - 1])
  t.ok(turns >= 3, `the event loop turned between the steps (${turns} turns during the count)`)
  t.match(await driver.stats(other), { total: Math.ceil(live.length / 128 / 10), claimed: 0 }, 'the other queue is counted on its own')
  t.match(await driver.stats({ project: 'p', queue: 'none' }), { total: 0, claimed: 0, free: 0 })
})

t.test('a large post staged when a count begins is left out whole, even if it commits between steps', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'missive-stats-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 's.sqlite')
  const driver = new SqliteDriver({ path, durability: 'fast', gcIntervalMs: 0 })
  t.teardown(() => driver.close())
  const ref = { project: 'p', queue: 'staged' }
  const post = async (n: number): Promise<string[]> => {
    const ids: string[] = []
    while (ids.length < n) ids.push(...(await driver.postMessages(ref, Array.from({ length: Math.min(500, n - ids.length) }, () => ({ body: '1', ttl: 3600 })), postOpts())))
    return ids
  }
  const before = (await post(STATS_STEP / 2)).length
  const staged = await post(STATS_STEP * 3)
  // The last part of the queue stands as a large post being staged (messages.ts keeps such a
  // row while its chunks go in): readers stop below its first seq. A second connection to the
  // file plays the post's last chunk, which removes the row.
  const raw = new Database(path)
  t.teardown(() => raw.close())
  const { qid } = raw.prepare('SELECT qid FROM queues WHERE project = ? AND name = ?').get('p', 'staged') as { qid: number }
  const { seq } = raw.prepare('SELECT seq FROM messages WHERE id = ?').get(staged[0]) as { seq: number }
  raw.prepare('INSERT INTO staging (qid, from_seq, n) VALUES (?, ?, ?)').run(qid, seq, staged.length)
  t.match(await driver.stats(ref), { total: before }, 'while staged, the post is not counted')

  // The count takes a step, turns the event loop, takes another; the post commits after that.
  const counting = driver.stats(ref)
  await new Promise<void>((resolve) =>
    setImmediate(() => {
      raw.prepare('DELETE FROM staging WHERE qid = ?').run(qid)
      resolve()
    }),
  )
  const total = (await counting).total
  t.ok(total === before || total === before + staged.length, `the post counted whole or not at all (${total} of ${before} + ${staged.length})`)
  t.match(await driver.stats(ref), { total: before + staged.length }, 'once committed, all of it')
})
