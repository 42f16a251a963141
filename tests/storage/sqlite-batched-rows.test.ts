/**
 * The embedded store writes several rows per statement (worker/storage/sqlite): a post's messages
 * go in multi-row INSERTs of up to 16 rows, a claim's messages are taken by one UPDATE. These
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
import type { RecordRow } from '../../worker/storage/sqlite/migration.js'

/** A whole row of the messages table. */
type Row = RecordRow & { qid: number }

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

t.test('a claim takes exactly its messages, extending only those that would expire first', async (t) => {
  const { driver, clock, rows } = setup(t)
  const ref = { project: 'p', queue: 'claims' }
  // 30 messages: even ones expire in 100 s, odd ones in an hour.
  const ids = await driver.postMessages(ref, Array.from({ length: 30 }, (_, i) => ({ body: String(i), ttl: i % 2 === 0 ? 100 : 3600 })), postOpts())
  const posted = clock()
  clock.advance(10)
  const now = clock()
  const claim = (await driver.createClaim(ref, { ttl: 300, grace: 60, limit: 20 }))!
  t.same(claim.messages.map((m) => m.id), ids.slice(0, 20), 'the first 20 messages, oldest first')
  const got = rows('claims')
  got.slice(0, 20).forEach((r, i) => {
    const short = i % 2 === 0
    t.match(
      { claim_id: r.claim_id, claim_expires: r.claim_expires, claim_count: r.claim_count, ttl: r.ttl, expires: r.expires },
      {
        claim_id: claim.id,
        claim_expires: now + 300_000,
        claim_count: 1,
        // Zaqar: a message that would expire before the claim lives to the claim's end plus grace.
        ttl: short ? 360 : 3600,
        expires: short ? now + 360_000 : posted + 3_600_000,
      },
      `message ${i}`,
    )
    t.equal(claim.messages[i]!.ttl, short ? 360 : 3600, `message ${i}: the answered ttl`)
  })
  t.same(
    got.slice(20).map((r) => [r.claim_id, r.claim_expires, r.claim_count]),
    Array.from({ length: 10 }, () => [null, 0, 0]),
    'the messages past the limit are untouched',
  )

  const one = (await driver.createClaim(ref, { ttl: 60, grace: 0, limit: 1 }))!
  t.same(one.messages.map((m) => m.id), [ids[20]], 'a claim of one takes the next message')
  const after = rows('claims')
  t.equal(after[20]!.claim_id, one.id)
  t.same(after.slice(21).map((r) => r.claim_id), Array.from({ length: 9 }, () => null), 'and no other')
  t.same(after.slice(0, 20).map((r) => r.claim_id), Array.from({ length: 20 }, () => claim.id), 'the first claim keeps its messages')
})

t.test('a claim that moves due messages to the dead-letter queue takes the others', async (t) => {
  const { driver, clock, rows } = setup(t)
  const ref = { project: 'p', queue: 'src' }
  await driver.createQueue(ref, { _max_claim_count: 1, _dead_letter_queue: 'dlq' })
  const first = await driver.postMessages(ref, Array.from({ length: 4 }, (_, i) => ({ body: `"a${i}"` })), postOpts())
  const c1 = (await driver.createClaim(ref, { ttl: 60, grace: 60, limit: 2 }))!
  await driver.releaseClaim(ref, c1.id)
  const more = await driver.postMessages(ref, [{ body: '"b0"' }], postOpts())
  clock.advance(5)
  // Messages 0 and 1 were claimed once (the maximum): they move; 2, 3 and b0 are taken.
  const c2 = (await driver.createClaim(ref, { ttl: 60, grace: 60, limit: 10 }))!
  t.same(c2.messages.map((m) => m.id), [first[2], first[3], more[0]], 'the claim holds the messages not due')
  t.same(
    rows('src').map((r) => [r.id, r.claim_id, r.claim_count]),
    [
      [first[2], c2.id, 1],
      [first[3], c2.id, 1],
      [more[0], c2.id, 1],
    ],
    'the source keeps only the claimed messages, each claimed once',
  )
  t.same(
    rows('dlq').map((r) => [r.id, r.claim_id, r.claim_expires, r.claim_count]),
    [
      [first[0], null, 0, 1],
      [first[1], null, 0, 1],
    ],
    'the due messages are in the dead-letter queue, unclaimed',
  )
  t.equal(driver.deadLettered, 2)
})
