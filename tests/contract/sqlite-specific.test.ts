/** SQLite-only behaviour: persistence, garbage collection, failure mapping, URIs, ids. */
import { randomUUID } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { mock } from 'node:test'
import t from 'tap'
import { manualClock } from '../../shared/clock.js'
import { openDriver } from '../../worker/storage/index.js'
import { sqlitePath } from '../../shared/storage/registry.js'
import { SqliteDriver, type SqliteDriverOptions } from '../../worker/storage/sqlite/driver.js'
import { SCHEMA_VERSION } from '../../worker/storage/sqlite/schema.js'
import { storageErrorHttp } from '../../proxy/storage-errors.js'
import { QueueMoved, StoreUnavailable } from '../../shared/storage/errors.js'
import { listOpts, postOpts, type TapTest } from './suite.js'

function tempDir(t: TapTest): string {
  const dir = mkdtempSync(join(tmpdir(), 'missive-sqlite-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function open(t: TapTest, path: string, opts: Partial<SqliteDriverOptions> = {}): SqliteDriver {
  const driver = new SqliteDriver({ path, durability: 'durable', gcIntervalMs: 0, ...opts })
  t.teardown(() => driver.close())
  return driver
}

/** Row counts read through a separate connection. */
function count(path: string, table: 'messages' | 'claims' | 'queues'): number {
  const db = new Database(path, { readonly: true })
  try {
    return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n
  } finally {
    db.close()
  }
}

const ref = { project: 'p', queue: 'q' }

t.test('data survives close and reopen, FIFO and markers continue', async (t) => {
  const path = join(tempDir(t), 'store.sqlite')
  const clock = manualClock()
  const first = new SqliteDriver({ path, durability: 'durable', clock, gcIntervalMs: 0 })
  await first.createQueue(ref, { description: 'kept' })
  const before = await first.postMessages(ref, [{ body: '{"n":1}' }, { body: '{"n":2}' }], postOpts())
  const claim = (await first.createClaim(ref, { ttl: 300, grace: 60, limit: 1 }))!
  const page = await first.listMessages(ref, listOpts({ limit: 1 }))
  await first.close()
  await first.close()

  const second = open(t, path, { clock })
  t.same(await second.getQueue(ref), { description: 'kept' })
  const after = await second.postMessages(ref, [{ body: '{"n":3}' }], postOpts())
  t.same((await second.listMessages(ref, listOpts())).items.map((m) => m.id), [...before, ...after])
  t.same((await second.getClaim(ref, claim.id))?.messages.map((m) => m.id), [before[0]], 'claims survive')
  const next = await second.listMessages(ref, listOpts({ marker: page.next }))
  t.same(next.items.map((m) => m.id), [before[1], after[0]], 'markers survive')
})

t.test('collectGarbage deletes expired rows in bounded batches', async (t) => {
  const path = join(tempDir(t), 'gc.sqlite')
  const clock = manualClock()
  const driver = open(t, path, { clock })
  await driver.postMessages(ref, Array.from({ length: 25 }, () => ({ body: '1', ttl: 60 })), postOpts())
  const live = await driver.postMessages(ref, Array.from({ length: 5 }, () => ({ body: '2', ttl: 3600 })), postOpts())
  const claims = []
  for (let i = 0; i < 3; i++) claims.push((await driver.createClaim(ref, { ttl: 60, grace: 60, limit: 1 }))!)
  t.same(driver.collectGarbage(10), { messages: 0, claims: 0 }, 'nothing expired yet')

  clock.advance(200_000)
  t.same(driver.collectGarbage(10), { messages: 10, claims: 3 })
  t.same(driver.collectGarbage(10), { messages: 10, claims: 0 })
  t.same(driver.collectGarbage(10), { messages: 5, claims: 0 })
  t.same(driver.collectGarbage(10), { messages: 0, claims: 0 })
  t.equal(count(path, 'messages'), 5)
  t.equal(count(path, 'claims'), 0)
  t.same((await driver.listMessages(ref, listOpts())).items.map((m) => m.id), live, 'live messages untouched')
})

t.test('purge and delete do bounded work: the rows they drop are collected in bounded batches', async (t) => {
  const path = join(tempDir(t), 'orphans.sqlite')
  const clock = manualClock()
  const driver = open(t, path, { clock })
  const other = { project: 'p', queue: 'other' }
  await driver.createQueue(ref, { description: 'kept' })
  await driver.postMessages(ref, Array.from({ length: 25 }, () => ({ body: '1' })), postOpts())
  const claim = (await driver.createClaim(ref, { ttl: 300, grace: 60, limit: 2 }))!
  await driver.postMessages(other, Array.from({ length: 12 }, () => ({ body: '2' })), postOpts())
  const survivor = await driver.postMessages({ project: 'p', queue: 'third' }, [{ body: '3' }], postOpts())

  await driver.purge(ref)
  await driver.deleteQueue(other)
  t.equal(count(path, 'messages'), 38, 'no message row was deleted by the requests themselves')
  t.same((await driver.listMessages(ref, listOpts())).items, [], 'the purged queue is empty at once')
  t.equal(await driver.getClaim(ref, claim.id), null, 'its claim is gone')
  t.same(await driver.getQueue(ref), { description: 'kept' }, 'purge keeps the queue and its metadata')
  t.equal((await driver.stats(ref)).total, 0)
  t.equal(await driver.getQueue(other), null, 'the deleted queue is gone')
  t.same((await driver.listMessages(other, listOpts())).items, [])

  const batches: number[] = []
  for (let i = 0; i < 10; i++) {
    const r = driver.collectGarbage(10)
    if (r.messages === 0 && r.claims === 0) break
    t.ok(r.messages <= 10 && r.claims <= 10, `batch ${i}: ${r.messages} messages, ${r.claims} claims`)
    batches.push(r.messages)
  }
  t.same(batches.reduce((a, b) => a + b, 0), 37, 'every dropped message collected')
  t.equal(count(path, 'messages'), 1, 'only the live message is left')
  t.equal(count(path, 'claims'), 0)
  t.same((await driver.getMessages({ project: 'p', queue: 'third' }, survivor)).map((m) => m.id), survivor)
  const again = await driver.postMessages(ref, [{ body: '4' }], postOpts())
  t.same((await driver.listMessages(ref, listOpts())).items.map((m) => m.id), again, 'the purged queue takes new messages')
})

t.test('the collector timer runs on its own, chains full batches up to its limit, and stops on close', async (t) => {
  // Timers are driven by hand (node:test's mock timers): each tick is one interval, and the
  // batches a tick chains with setImmediate run within it. Messages are posted before the mock,
  // by a driver of their own, because posting itself waits on setImmediate (group commit).
  const path = join(tempDir(t), 'timer.sqlite')
  const clock = manualClock()
  const writer = new SqliteDriver({ path, durability: 'durable', gcIntervalMs: 0, checkpointIntervalMs: 0, clock })
  await writer.postMessages(ref, Array.from({ length: 150 }, () => ({ body: '1', ttl: 60 })), postOpts())
  await writer.close()

  mock.timers.enable({ apis: ['setInterval', 'setImmediate'] })
  t.teardown(() => mock.timers.reset())
  const realClear = globalThis.clearInterval
  const cleared: unknown[] = []
  globalThis.clearInterval = ((h?: Parameters<typeof clearInterval>[0]) => {
    cleared.push(h)
    realClear(h)
  }) as typeof clearInterval
  t.teardown(() => {
    globalThis.clearInterval = realClear
  })
  const errors: unknown[] = []
  const driver = new SqliteDriver({ path, durability: 'durable', gcIntervalMs: 1000, gcBatchSize: 1, checkpointIntervalMs: 0, clock, onGcError: (e) => errors.push(e) })
  t.teardown(() => driver.close())

  mock.timers.tick(1000)
  t.equal(count(path, 'messages'), 150, 'nothing has expired yet: one empty batch, no chain')
  clock.advance(61_000)
  mock.timers.tick(1000)
  // One batch, then GC_CHAIN_LIMIT (100) chained ones: the tick stops there, whatever is left.
  t.equal(count(path, 'messages'), 150 - 101, 'one tick: a batch and 100 chained batches of 1')
  mock.timers.tick(999)
  t.equal(count(path, 'messages'), 49, 'nothing between intervals')
  mock.timers.tick(1)
  t.equal(count(path, 'messages'), 0, 'the next tick collects the rest')
  t.same(errors, [])

  const before = cleared.length
  await driver.close()
  t.equal(cleared.length, before + 1, 'close clears the collector interval')
  mock.timers.tick(5000)
  t.same(errors, [], 'no tick after close')
})

t.test('a failing collector tick reports the error and the next tick runs again', async (t) => {
  const path = join(tempDir(t), 'busy.sqlite')
  const clock = manualClock()
  const writer = new SqliteDriver({ path, durability: 'durable', gcIntervalMs: 0, checkpointIntervalMs: 0, clock })
  await writer.postMessages(ref, Array.from({ length: 5 }, () => ({ body: '1', ttl: 60 })), postOpts())
  await writer.close()
  clock.advance(61_000)

  mock.timers.enable({ apis: ['setInterval', 'setImmediate'] })
  t.teardown(() => mock.timers.reset())
  const errors: unknown[] = []
  const driver = new SqliteDriver({ path, durability: 'durable', gcIntervalMs: 1000, busyTimeoutMs: 0, checkpointIntervalMs: 0, clock, onGcError: (e) => errors.push(e) })
  t.teardown(() => driver.close())
  // Another connection holds the write lock: the collector's BEGIN IMMEDIATE gets SQLITE_BUSY.
  const other = new Database(path)
  t.teardown(() => other.close())
  other.exec('BEGIN IMMEDIATE')
  mock.timers.tick(1000)
  t.equal(errors.length, 1, 'the busy store is reported to onGcError, not thrown')
  t.match(errors[0], { status: 503 }, 'as the store being unavailable')
  t.equal(count(path, 'messages'), 5, 'nothing collected while locked')

  other.exec('COMMIT')
  mock.timers.tick(1000)
  t.equal(errors.length, 1, 'no new error')
  t.equal(count(path, 'messages'), 0, 'the next tick collects')
  await driver.close()
})

t.test('malformed ids never reach SQL', async (t) => {
  const driver = open(t, ':memory:')
  const [id] = await driver.postMessages(ref, [{ body: '1' }], postOpts())
  const bad = ["' OR 1=1 --", '', 'x'.repeat(10_000), id.toUpperCase(), `${id} `, '%', '_']
  for (const b of bad) {
    t.equal(await driver.getMessage(ref, b), null)
    t.equal(await driver.getClaim(ref, b), null)
    await driver.deleteMessage(ref, b)
    await driver.releaseClaim(ref, b)
    await t.rejects(driver.renewClaim(ref, b, { ttl: 60, grace: 60 }), { code: 'not_found' })
  }
  t.same(await driver.getMessages(ref, bad), [])
  await driver.deleteMessages(ref, bad)
  await t.rejects(driver.deleteMessage(ref, id, "' OR 1=1 --"), { code: 'claim_invalid' })
  t.ok(await driver.getMessage(ref, id), 'still there')
})

t.test('a locked store reports unavailable; reads go on under WAL', async (t) => {
  const path = join(tempDir(t), 'locked.sqlite')
  const driver = open(t, path, { busyTimeoutMs: 20 })
  await driver.postMessages(ref, [{ body: '1' }], postOpts())
  const other = new Database(path)
  t.teardown(() => other.close())
  other.exec('BEGIN IMMEDIATE')
  await t.rejects(driver.postMessages(ref, [{ body: '2' }], postOpts()), {
    code: 'unavailable',
    kind: 'store_unavailable',
    reason: 'unreachable',
    operation: 'postMessages',
  })
  const locked = (await driver.postMessages(ref, [{ body: '2' }], postOpts()).catch((e: unknown) => e)) as StoreUnavailable
  t.type(locked, StoreUnavailable)
  t.match(storageErrorHttp(locked), { status: 503, description: /Messages could not be enqueued/ }, 'worded by the transport')
  t.type(locked.cause, Database.SqliteError, 'the store error is kept as cause')
  await t.rejects(driver.createClaim(ref, { ttl: 60, grace: 60, limit: 1 }), { code: 'unavailable' })
  t.equal((await driver.listMessages(ref, listOpts())).items.length, 1, 'reads still served')
  other.exec('ROLLBACK')
  t.equal((await driver.postMessages(ref, [{ body: '2' }], postOpts())).length, 1, 'writes resume')
})

t.test('a closed driver reports unavailable', async (t) => {
  const driver = new SqliteDriver({ path: ':memory:', durability: 'fast' })
  await driver.close()
  await t.rejects(driver.ping(), { code: 'unavailable' })
  await t.rejects(driver.listMessages(ref, listOpts()), { code: 'unavailable' })
  await t.resolves(driver.close(), 'close is idempotent')
})

t.test('a store written by a newer schema is refused', async (t) => {
  const path = join(tempDir(t), 'future.sqlite')
  const db = new Database(path)
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`)
  db.close()
  t.throws(() => new SqliteDriver({ path, durability: 'durable' }), /schema version/)
})

t.test('openDriver and sqlite: URIs', async (t) => {
  const dataDir = join(tempDir(t), 'data')
  t.equal(sqlitePath('sqlite:', dataDir), join(dataDir, 'pool-default.sqlite'))
  t.equal(sqlitePath('sqlite:pools/a.sqlite', dataDir), join(dataDir, 'pools', 'a.sqlite'))
  t.equal(sqlitePath('sqlite:/abs/b.sqlite', dataDir), '/abs/b.sqlite')
  t.equal(sqlitePath('sqlite::memory:', dataDir), ':memory:')

  const clock = manualClock(1_000_000)
  const driver = await openDriver('sqlite:', { dataDir, durability: 'fast', clock })
  t.teardown(() => driver.close())
  t.equal(driver.kind, 'sqlite')
  t.ok(existsSync(join(dataDir, 'pool-default.sqlite')), 'default file created under dataDir')
  const [id] = await driver.postMessages(ref, [{ body: '1' }], postOpts())
  t.equal((await driver.getMessage(ref, id))?.created, 1_000_000, 'the given clock drives the driver')

  const nested = await openDriver('sqlite:pools/a.sqlite', { dataDir, durability: 'durable' })
  t.teardown(() => nested.close())
  t.ok(existsSync(join(dataDir, 'pools', 'a.sqlite')), 'relative paths resolve under dataDir, directories created')

  const notADir = join(dataDir, 'pool-default.sqlite')
  await t.rejects(openDriver('sqlite:', { dataDir: notADir, durability: 'durable' }), {
    message: new RegExp(`cannot open the SQLite store ${notADir}`),
  })

  for (const uri of ['nonsense', '']) {
    await t.rejects(openDriver(uri, { dataDir, durability: 'durable' }), { code: 'bad_request', message: /Unsupported storage URI/ })
  }
  // A store the registry knows but this build has no driver for says so (as the admin API does).
  await t.rejects(openDriver('mongodb://x', { dataDir, durability: 'durable' }), { code: 'bad_request', message: /no MongoDB store in this build/ })
})

// Speed is measured by `npm run bench`, not asserted here: this checks a long run drains exactly.
t.test('2,000 messages posted, claimed and deleted in batches drain the queue exactly', async (t) => {
  const driver = open(t, join(tempDir(t), 'perf.sqlite'), { durability: 'fast' })
  const q = { project: `p-${randomUUID()}`, queue: 'perf' }
  for (let i = 0; i < 200; i++) {
    await driver.postMessages(q, Array.from({ length: 10 }, (_, j) => ({ body: `{"i":${i},"j":${j}}` })), postOpts())
  }
  let claimed = 0
  for (;;) {
    const claim = await driver.createClaim(q, { ttl: 60, grace: 60, limit: 10 })
    if (claim === null) break
    claimed += claim.messages.length
    await driver.deleteMessages(q, claim.messages.map((m) => m.id), [claim.id])
  }
  t.equal(claimed, 2000)
  t.equal((await driver.stats(q)).total, 0)
})

t.test('a version-1 store is upgraded in place: data kept, migration tables added', async (t) => {
  const path = join(tempDir(t), 'v1.sqlite')
  const first = new SqliteDriver({ path, durability: 'durable', gcIntervalMs: 0 })
  const ids = await first.postMessages(ref, [{ body: '{"n":1}' }, { body: '{"n":2}' }], postOpts())
  await first.close()
  // Make it the file version 1 wrote: no migration tables, user_version 1.
  const raw = new Database(path)
  raw.exec('DROP TABLE fences; DROP TABLE journal; DROP TABLE journal_ids; DROP TABLE dead_journals')
  raw.pragma('user_version = 1')
  raw.close()

  const driver = open(t, path)
  const db = new Database(path, { readonly: true })
  t.teardown(() => db.close())
  t.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION, 'upgraded')
  t.equal(SCHEMA_VERSION, 2)
  t.same((await driver.listMessages(ref, listOpts())).items.map((m) => m.id), ids, 'messages kept')
  const fence = { token: 'm1', to: 'b', state: 'journal' as const }
  await driver.fenceQueue(ref, fence, null)
  await driver.deleteMessage(ref, ids[0])
  t.same((await driver.readJournal(ref, 10)).entries.map((e) => e.id), [ids[0]], 'the journal works')
})

t.test('a fence set through one connection stops the next operation of another on the same file', async (t) => {
  const path = join(tempDir(t), 'shared.sqlite')
  const a = open(t, path)
  const b = open(t, path)
  await a.postMessages(ref, [{ body: '1' }], postOpts())
  t.equal((await b.stats(ref)).total, 1)
  const fence = { token: 'm1', to: 'elsewhere', state: 'moved' as const }
  await a.fenceQueue(ref, fence, null)
  await t.rejects(b.postMessages(ref, [{ body: '2' }], postOpts()), QueueMoved, 'no cached "no fence" in the other')
  await t.rejects(b.stats(ref), QueueMoved)
  await b.fenceQueue(ref, null, 'm1')
  t.equal((await a.stats(ref)).total, 1, 'cleared through the other; nothing was written meanwhile')
})

t.test('dropped journals are collected in bounded batches', async (t) => {
  const path = join(tempDir(t), 'journal.sqlite')
  const driver = open(t, path)
  const ids = await driver.postMessages(ref, Array.from({ length: 30 }, (_, i) => ({ body: String(i) })), postOpts())
  await driver.fenceQueue(ref, { token: 'm1', to: 'b', state: 'journal' }, null)
  await driver.deleteMessages(ref, ids.slice(0, 20))
  const rows = (): number => {
    const db = new Database(path, { readonly: true })
    try {
      return (db.prepare('SELECT count(*) AS n FROM journal').get() as { n: number }).n
    } finally {
      db.close()
    }
  }
  t.equal(rows(), 20)
  await driver.fenceQueue(ref, null, 'm1')
  t.equal(rows(), 20, 'clearing the fence only marks the journal dead (bounded work)')
  driver.collectGarbage(8)
  t.equal(rows(), 12, 'one batch')
  driver.collectGarbage(8)
  driver.collectGarbage(8)
  t.equal(rows(), 0, 'all collected')
})

t.test('readForMigration stops below a large post being staged, and is not at its end', async (t) => {
  const path = join(tempDir(t), 'staged.sqlite')
  const driver = open(t, path)
  const [first] = await driver.postMessages(ref, [{ body: '"first"' }], postOpts())
  // A crash mid-post leaves staged rows; simulate one through another connection.
  const raw = new Database(path)
  t.teardown(() => raw.close())
  const qid = (raw.prepare('SELECT qid FROM queues WHERE project = ? AND name = ?').get('p', 'q') as { qid: number }).qid
  raw.prepare(`INSERT INTO staging (qid, from_seq, n) VALUES (?, (SELECT seq FROM sqlite_sequence WHERE name = 'messages') + 1, 1)`).run(qid)
  raw
    .prepare(`INSERT INTO messages (id, qid, body, client_id, ttl, created, expires, visible) VALUES (?, ?, '"staged"', 'c', 60, 0, 9e15, 0)`)
    .run(randomUUID(), qid)
  const batch = await driver.readForMigration(ref, 0, 10)
  t.same(batch.records.map((r) => r.id), [first], 'the staged message is not read')
  t.equal(batch.end, false, 'not the end while a post is staged')
})

t.test('a queue moved away and back: the import replaces rows its dropped copy left for the collector', async (t) => {
  const path = join(tempDir(t), 'back.sqlite')
  const driver = open(t, path)
  const ids = await driver.postMessages(ref, [{ body: '"a"' }, { body: '"b"' }], postOpts())
  const out = await driver.readForMigration(ref, 0, 10)
  await driver.fenceQueue(ref, { token: 'away', to: 'other', state: 'moved' }, null)
  await driver.dropQueueData(ref, 'away')
  t.equal(count(path, 'messages'), 2, 'the rows await the collector')
  // Back again: the tombstone is replaced (CAS on its token) by an importing fence.
  await driver.fenceQueue(ref, { token: 'back', to: 'here', state: 'importing' }, 'away')
  await driver.importMessages(ref, 'back', { upsert: out.records })
  await driver.fenceQueue(ref, null, 'back')
  t.same((await driver.listMessages(ref, listOpts())).items.map((m) => m.id), ids, 'the same ids, imported again')
  const other = { project: 'p', queue: 'other' }
  const [live] = await driver.postMessages(other, [{ body: '1' }], postOpts())
  await driver.fenceQueue(ref, { token: 'x', to: 'here', state: 'importing' }, null)
  await t.rejects(
    driver.importMessages(ref, 'x', { upsert: [{ ...out.records[0], id: live }] }),
    { code: 'conflict' },
    'an id live in another queue of the store is refused, not stolen',
  )
  t.ok(await driver.getMessage(other, live))
})

t.test('quota of messages per queue: two drivers (processes) on one file never overshoot', async (t) => {
  // Each driver keeps its own bound of the queue's messages (messages.ts, `#overQuota`); it must
  // notice what the other one stored, or deleted, through the file alone.
  const path = join(tempDir(t), 'store.sqlite')
  const a = open(t, path)
  const b = open(t, path)
  const quota = postOpts({ maxMessages: 5 })
  const one = [{ body: '1' }]
  const FULL = { code: 'quota_exceeded', kind: 'queue_full' }
  t.equal((await a.postMessages(ref, [{ body: '1' }, { body: '2' }, { body: '3' }], quota)).length, 3, 'A: 3 of 5 (A now knows 3)')
  t.equal((await b.postMessages(ref, [{ body: '4' }, { body: '5' }], postOpts())).length, 2, 'B stores 2 without a quota')
  await t.rejects(a.postMessages(ref, one, quota), FULL, "A sees B's messages: 6 > 5")
  t.equal(count(path, 'messages'), 5)
  t.equal((await b.postMessages(ref, one, postOpts({ maxMessages: 6 }))).length, 1, 'B: 6 of 6')
  await t.rejects(a.postMessages(ref, one, postOpts({ maxMessages: 6 })), FULL)
  const [oldest] = (await b.listMessages(ref, listOpts())).items
  await b.deleteMessage(ref, oldest!.id)
  t.equal((await a.postMessages(ref, one, postOpts({ maxMessages: 6 }))).length, 1, "A sees B's delete: room for one")
  await t.rejects(b.postMessages(ref, one, postOpts({ maxMessages: 6 })), FULL, "and B sees A's post")
  t.equal(count(path, 'messages'), 6)
})
