/**
 * The embedded store writes several rows per statement (worker/storage/sqlite): a post's messages
 * go in multi-row INSERTs of up to 16 rows. These
 * tests read the rows back through a separate connection: every column of every row must be what
 * one statement per row wrote, in order, across the statement boundaries.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { manualClock } from '../../shared/clock.js'
import { SqliteDriver } from '../../worker/storage/sqlite/driver.js'
import { CLIENT_A, postOpts, type TapTest } from '../contract/suite.js'
import type { NewMessage } from '../../shared/storage/contract.js'

interface Row {
  seq: number
  id: string
  qid: number
  body: string
  client_id: string
  ttl: number
  created: number
  expires: number
  visible: number
  claim_id: string | null
  claim_expires: number
  claim_count: number
}

function setup(t: TapTest) {
  const dir = mkdtempSync(join(tmpdir(), 'missive-rows-'))
  const path = join(dir, 'rows.sqlite')
  const clock = manualClock(1_700_000_000_000)
  const driver = new SqliteDriver({ path, durability: 'fast', gcIntervalMs: 0, checkpointIntervalMs: 0, clock })
  const raw = new Database(path, { readonly: true })
  t.teardown(async () => {
    raw.close()
    await driver.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const rows = (queue: string): Row[] =>
    raw.prepare('SELECT m.* FROM messages m JOIN queues q ON q.qid = m.qid WHERE q.name = ? ORDER BY m.seq').all(queue) as Row[]
  return { driver, clock, rows }
}

t.test('posts of every size around the rows per INSERT store each message as sent, in order', async (t) => {
  const { driver, clock, rows } = setup(t)
  const ref = { project: 'p', queue: 'sizes' }
  // The queue's own default TTL and delay apply where a message sets none.
  await driver.createQueue(ref, { _default_message_ttl: 900, _default_message_delay: 5 })
  const expected: { id: string; body: string; ttl: number; delay: number; created: number }[] = []
  for (const n of [1, 15, 16, 17, 32, 33, 100, 128]) {
    clock.advance(1000)
    const msgs: NewMessage[] = Array.from({ length: n }, (_, i) => {
      const m: NewMessage = { body: JSON.stringify({ n, i, text: `é${'x'.repeat(i)}` }) }
      if (i % 3 === 0) m.ttl = 60 + i
      if (i % 4 === 1) m.delay = i
      return m
    })
    const ids = await driver.postMessages(ref, msgs, postOpts({ postBytes: 10 }))
    t.equal(ids.length, n, `a post of ${n} answers ${n} ids`)
    msgs.forEach((m, i) => expected.push({ id: ids[i]!, body: m.body, ttl: m.ttl ?? 900, delay: m.delay ?? 5, created: clock() }))
  }
  const got = rows('sizes')
  t.equal(got.length, expected.length, 'one row per message')
  for (let i = 1; i < got.length; i++) if (got[i]!.seq <= got[i - 1]!.seq) t.fail(`seq order broken at ${i}`)
  t.same(
    got.map((r) => ({ id: r.id, body: r.body, client_id: r.client_id, ttl: r.ttl, created: r.created, expires: r.expires, visible: r.visible })),
    expected.map((e) => ({
      id: e.id,
      body: e.body,
      client_id: CLIENT_A,
      ttl: e.ttl,
      created: e.created,
      expires: e.created + e.ttl * 1000,
      visible: e.created + e.delay * 1000,
    })),
    'ids, bodies, poster, ttl, creation, expiry and visibility of every row, in post order',
  )
  t.ok(got.every((r) => r.claim_id === null && r.claim_expires === 0 && r.claim_count === 0), 'no row is claimed')
})
