/**
 * The migration section of the contract suite (shared/storage/migration.ts): fences, the journal,
 * the copy cursor and the import, on one store. Run by `runContract` for every store, in-process
 * and over RPC (so `QueueMoved` and `FenceConflict` are checked to cross the wire with their
 * data). Copies between two stores are tested in tests/storage/migration-copy.test.ts.
 */
import { randomUUID } from 'node:crypto'
import type { DataDriver, PostOptions, QueueRef } from '../../shared/storage/contract.js'
import { FenceConflict, QueueMoved } from '../../shared/storage/errors.js'
import type { MessageRecord, QueueFence } from '../../shared/storage/migration.js'
import type { ManualClock, TapTest } from './suite.js'

const SECOND = 1000
const CLIENT = randomUUID()
const CLAIM = { ttl: 120, grace: 60, limit: 10 }

function postOpts(over: Partial<PostOptions> = {}): PostOptions {
  return { clientId: CLIENT, defaultTtl: 3600, postBytes: 100, queuePolicy: true, ...over }
}

const body = (i: number | string): string => JSON.stringify({ n: i })

async function postN(driver: DataDriver, ref: QueueRef, n: number, ttl?: number): Promise<string[]> {
  return driver.postMessages(ref, Array.from({ length: n }, (_, i) => ({ body: body(i), ...(ttl !== undefined && { ttl }) })), postOpts())
}

/**
 * A fresh project whose fences are cleared and queues deleted when the test ends (a fenced
 * queue refuses the delete, so fences go first).
 */
function project(t: TapTest, driver: DataDriver): { ref: (queue?: string) => QueueRef } {
  const name = `p-${randomUUID()}`
  const used = new Set<string>()
  t.teardown(async () => {
    for (const queue of used) {
      const ref = { project: name, queue }
      const f = await driver.getFence(ref)
      if (f !== null) await driver.fenceQueue(ref, null, f.token)
    }
    for (;;) {
      const page = await driver.listQueues(name, { limit: 100 })
      if (page.items.length === 0) return
      for (const q of page.items) await driver.deleteQueue({ project: name, queue: q.name })
    }
  })
  return {
    ref: (queue = 'q') => {
      used.add(queue)
      return { project: name, queue }
    },
  }
}

const fence = (state: QueueFence['state'], token = randomUUID()): QueueFence => ({ token, to: 'pool-b', state })

/** Rejects like QueueMoved carrying `f`. */
async function refused(t: TapTest, p: Promise<unknown>, ref: QueueRef, f: QueueFence, what: string): Promise<void> {
  try {
    await p
    t.fail(`${what}: not refused`)
  } catch (err) {
    t.ok(err instanceof QueueMoved, `${what}: QueueMoved`)
    if (err instanceof QueueMoved) {
      t.same(err.ref, ref, `${what}: names the queue`)
      t.same(err.fence, f, `${what}: carries the fence`)
      t.equal(err.code, 'unavailable')
    }
  }
}

async function conflict(t: TapTest, p: Promise<unknown>, current: QueueFence | null, what: string): Promise<void> {
  try {
    await p
    t.fail(`${what}: no conflict`)
  } catch (err) {
    t.ok(err instanceof FenceConflict, `${what}: FenceConflict`)
    if (err instanceof FenceConflict) t.same(err.current, current, `${what}: carries the current fence`)
  }
}

/** Everything a client can observe of a queue (for "nothing changed"). */
async function snapshot(driver: DataDriver, ref: QueueRef, claimId?: string): Promise<unknown> {
  const list = await driver.listMessages(ref, { limit: 20, clientId: randomUUID(), echo: true, includeClaimed: true, includeDelayed: true })
  return {
    meta: await driver.getQueue(ref),
    stats: await driver.stats(ref),
    list: list.items,
    claim: claimId === undefined ? null : await driver.getClaim(ref, claimId),
  }
}

/** Every journalled id, with its record, after draining nothing. */
async function journal(driver: DataDriver, ref: QueueRef): Promise<Map<string, { version: number; record: MessageRecord | null }>> {
  const page = await driver.readJournal(ref, 1000)
  return new Map(page.entries.map((e) => [e.id, { version: e.version, record: e.record }]))
}

export function defineMigrationTests(t: TapTest, driver: DataDriver, timed: (title: string, fn: (t: TapTest, clock: ManualClock) => Promise<void>) => unknown): void {
  t.test('migration: fenceQueue is a compare-and-set; getFence reads it; a missing queue can be fenced', async (t) => {
    const p = project(t, driver)
    const ref = p.ref()
    t.equal(await driver.getFence(ref), null, 'no fence at first')
    const j = fence('journal')
    await driver.fenceQueue(ref, j, null)
    t.same(await driver.getFence(ref), j)
    t.equal(await driver.getQueue(ref), null, 'fencing does not create the queue')
    await conflict(t, driver.fenceQueue(ref, fence('journal'), null), j, 'set over an existing fence')
    await conflict(t, driver.fenceQueue(ref, null, randomUUID()), j, 'clear with another token')
    const m = { ...j, state: 'moved' as const }
    await driver.fenceQueue(ref, m, j.token)
    t.same(await driver.getFence(ref), m, 'journal → moved under the same token')
    await driver.fenceQueue(ref, null, m.token)
    t.equal(await driver.getFence(ref), null, 'cleared')
    await conflict(t, driver.fenceQueue(ref, null, m.token), null, 'clear twice')
  })

  t.test('migration: a fence outlives the queue data (delete under journal; a moved tombstone after dropQueueData)', async (t) => {
    const p = project(t, driver)
    const ref = p.ref()
    await postN(driver, ref, 3)
    const j = fence('journal')
    await driver.fenceQueue(ref, j, null)
    await driver.deleteQueue(ref)
    t.same(await driver.getFence(ref), j, 'the fence survives deleteQueue')
    await postN(driver, ref, 2)
    const m = { ...j, state: 'moved' as const }
    await driver.fenceQueue(ref, m, j.token)
    await conflict(t, driver.dropQueueData(ref, randomUUID()), m, 'drop with another token')
    await driver.dropQueueData(ref, m.token)
    t.same(await driver.getFence(ref), m, 'the moved tombstone stays')
    t.equal(await driver.countForMigration(ref), 0, 'the data is gone')
    await refused(t, driver.postMessages(ref, [{ body: '1' }], postOpts()), ref, m, 'post to the tombstone')
    await driver.fenceQueue(ref, null, m.token)
    t.equal(await driver.getQueue(ref), null, 'no queue left behind')
    t.same((await driver.listMessages(ref, { limit: 10, clientId: CLIENT, echo: true, includeClaimed: true })).items, [])
  })

  for (const state of ['moved', 'importing'] as const) {
    t.test(`migration: every client operation is refused under ${state}, and changes nothing`, async (t) => {
      const p = project(t, driver)
      const ref = p.ref()
      await driver.createQueue(ref, { a: 1 })
      const ids = await postN(driver, ref, 4)
      const claim = (await driver.createClaim(ref, { ...CLAIM, limit: 1 }))!
      const before = await snapshot(driver, ref, claim.id)
      const f = fence(state)
      await driver.fenceQueue(ref, f, null)
      const calls: [string, () => Promise<unknown>][] = [
        ['createQueue', () => driver.createQueue(ref, {})],
        ['getQueue', () => driver.getQueue(ref)],
        ['setQueueMetadata', () => driver.setQueueMetadata(ref, { b: 2 })],
        ['deleteQueue', () => driver.deleteQueue(ref)],
        ['stats', () => driver.stats(ref)],
        ['purge', () => driver.purge(ref)],
        ['postMessages', () => driver.postMessages(ref, [{ body: '"x"' }], postOpts())],
        ['listMessages', () => driver.listMessages(ref, { limit: 10, clientId: CLIENT, echo: true, includeClaimed: true })],
        ['getMessage', () => driver.getMessage(ref, ids[1])],
        ['getMessages', () => driver.getMessages(ref, ids)],
        ['deleteMessage', () => driver.deleteMessage(ref, ids[1])],
        ['deleteMessages', () => driver.deleteMessages(ref, ids)],
        ['popMessages', () => driver.popMessages(ref, 2)],
        ['createClaim', () => driver.createClaim(ref, CLAIM)],
        ['getClaim', () => driver.getClaim(ref, claim.id)],
        ['renewClaim', () => driver.renewClaim(ref, claim.id, { ttl: 300, grace: 0 })],
        ['releaseClaim', () => driver.releaseClaim(ref, claim.id)],
      ]
      for (const [name, call] of calls) await refused(t, call(), ref, f, name)
      // A post to a queue that does not exist must not create it lazily.
      const ghost = p.ref('ghost')
      await driver.fenceQueue(ghost, f, null)
      await refused(t, driver.postMessages(ghost, [{ body: '"x"' }], postOpts()), ghost, f, 'post to a missing fenced queue')
      t.equal(await driver.countForMigration(ghost), 0)
      await driver.fenceQueue(ghost, null, f.token)
      t.equal(await driver.getQueue(ghost), null, 'the refused post created no queue')
      t.same(await driver.getFence(ref), f, 'the fence is unchanged')
      t.equal(await driver.countForMigration(ref), 4, 'migration operations still read it')
      await driver.fenceQueue(ref, null, f.token)
      t.same(await snapshot(driver, ref, claim.id), before, 'nothing changed')
    })
  }

  t.test('migration: under journal every operation is served; each change of an existing message is journalled, posts are not', async (t) => {
    const p = project(t, driver)
    const ref = p.ref('src')
    await driver.createQueue(ref, { _max_claim_count: 1, _dead_letter_queue: 'dlq' })
    const [a, b, c, d, e, f, g] = await postN(driver, ref, 7)
    const j = fence('journal')
    await driver.fenceQueue(ref, j, null)
    t.same((await driver.readJournal(ref, 100)).entries, [], 'an empty journal')
    const posted = await postN(driver, ref, 2)
    t.equal(posted.length, 2, 'posts are served')
    t.same((await driver.readJournal(ref, 100)).entries, [], 'posts are not journalled')
    t.same(await driver.getQueue(ref), { _max_claim_count: 1, _dead_letter_queue: 'dlq' }, 'reads are served')

    await driver.deleteMessage(ref, a)
    let jr = await journal(driver, ref)
    t.same([...jr.keys()], [a], 'deleteMessage')
    t.equal(jr.get(a)!.record, null, 'a deleted message reads as null')

    await driver.deleteMessages(ref, [b])
    const claim = (await driver.createClaim(ref, { ...CLAIM, limit: 2 }))!
    t.same(claim.messages.map((m) => m.id), [c, d])
    jr = await journal(driver, ref)
    t.same([...jr.keys()], [a, b, c, d], 'deleteMessages and createClaim, oldest first')
    const rc = jr.get(c)!.record!
    t.equal(rc.claimId, claim.id, 'the record names the claim')
    t.equal(rc.claimCount, 1)
    t.ok(rc.claimExpires > 0)
    const page = await driver.readJournal(ref, 100)
    t.same(page.claims.map((x) => x.id), [claim.id], 'the active claim comes with the page')
    t.equal(page.claims[0].ttl, CLAIM.ttl)

    // A refused change journals nothing (the entry is written atomically with the change).
    await driver.deleteMessage(ref, d).catch(() => undefined)
    await driver.deleteMessages(ref, [d, g], [randomUUID()]).catch(() => undefined)
    t.same([...(await journal(driver, ref)).entries()].map(([id, e]) => [id, e.version]), [...jr.entries()].map(([id, e]) => [id, e.version]), 'refused deletes journal nothing')
    const v = jr.get(c)!.version
    await driver.renewClaim(ref, claim.id, { ttl: 300, grace: 0 })
    jr = await journal(driver, ref)
    t.ok(jr.get(c)!.version > v, 'renewClaim journals again with a higher version')
    t.same([...jr.keys()].slice(-2).sort(), [c, d].sort(), 'renewed messages move to the end')

    await driver.releaseClaim(ref, claim.id)
    jr = await journal(driver, ref)
    t.equal(jr.get(c)!.record!.claimId, undefined, 'releaseClaim: unclaimed now')
    t.ok(jr.has(claim.id), 'the released claim is journalled under its own id')
    t.equal(jr.get(claim.id)!.record, null, 'and reads as missing')
    // c and d were claimed once: the next claims move them to the DLQ (a change journalled);
    // a store may move them and claim e in one call, or answer null while it moves them.
    let next = null
    for (let i = 0; i < 3 && next === null; i++) next = await driver.createClaim(ref, { ...CLAIM, limit: 1 })
    t.same(next?.messages.map((m) => m.id), [e])
    jr = await journal(driver, ref)
    t.equal(jr.get(c)!.record, null, 'moved to the dead-letter queue: gone from here')
    t.equal(jr.get(d)!.record, null)
    t.equal(jr.get(e)!.record!.claimId, next!.id)
    const popped = await driver.popMessages(ref, 1)
    t.same(popped.map((m) => m.id), [f])
    jr = await journal(driver, ref)
    t.equal(jr.get(f)!.record, null, 'popMessages')
    t.notOk(jr.has(g), 'an untouched message is not journalled')
    t.notOk(jr.has(posted[0]))
    t.equal((await driver.readJournal(ref, 2)).entries.length, 2, 'limit')
    const dlq = p.ref('dlq')
    t.same((await driver.readJournal(dlq, 100)).entries, [], 'the dead-letter queue journals nothing (no fence)')
  })

  t.test('migration: a dead-letter queue fenced moved takes no moves; its due messages are reported', async (t) => {
    const p = project(t, driver)
    const src = p.ref('src')
    const dlq = p.ref('dlq')
    await driver.createQueue(src, { _max_claim_count: 1, _dead_letter_queue: 'dlq' })
    const [a] = await driver.postMessages(src, [{ body: '"poison"' }], postOpts())
    const first = (await driver.createClaim(src, CLAIM))!
    await driver.releaseClaim(src, first.id)
    const f = fence('moved')
    await driver.fenceQueue(dlq, f, null)
    const claim = await driver.createClaim(src, { ...CLAIM, deadLetter: 'dlq' })
    t.same(claim?.deadLetter?.ids, [a], 'reported for the proxy to move')
    t.equal(claim?.deadLetter?.queue, 'dlq')
    t.equal(claim?.messages.length, 0)
    const left = await driver.getMessage(src, a)
    t.ok(left, 'still in its queue')
    t.equal(left?.claimId, undefined, 'unclaimed')
    t.equal(await driver.countForMigration(dlq), 0, 'nothing written behind the fence')
  })

  t.test('migration: ackJournal removes an entry only at the version read', async (t) => {
    const p = project(t, driver)
    const ref = p.ref()
    const [a, b] = await postN(driver, ref, 2)
    const j = fence('journal')
    await driver.fenceQueue(ref, j, null)
    const claim = (await driver.createClaim(ref, { ...CLAIM, limit: 1 }))!
    await driver.deleteMessage(ref, b)
    const first = await journal(driver, ref)
    await driver.releaseClaim(ref, claim.id)
    const second = await journal(driver, ref)
    t.ok(second.get(a)!.version > first.get(a)!.version)
    await driver.ackJournal(ref, [
      { id: a, version: first.get(a)!.version },
      { id: b, version: first.get(b)!.version },
      { id: claim.id, version: second.get(claim.id)!.version },
    ])
    const left = await journal(driver, ref)
    t.same([...left.keys()], [a], 'the stale ack left the re-journalled entry; the current one went')
    await driver.ackJournal(ref, [{ id: a, version: second.get(a)!.version }])
    t.same((await driver.readJournal(ref, 10)).entries, [], 'acknowledged at its version')
  })

  t.test('migration: readForMigration says whether the journal holds entries or a reset', async (t) => {
    const p = project(t, driver)
    const ref = p.ref()
    const [a] = await postN(driver, ref, 2)
    t.equal((await driver.readForMigration(ref, 0, 10)).journal, false, 'no fence: no journal')
    await driver.fenceQueue(ref, fence('journal'), null)
    t.equal((await driver.readForMigration(ref, 0, 10)).journal, false, 'an empty journal')
    await driver.postMessages(ref, [{ body: body('late') }], postOpts())
    t.equal((await driver.readForMigration(ref, 0, 10)).journal, false, 'a post is not journalled')
    await driver.deleteMessage(ref, a)
    t.equal((await driver.readForMigration(ref, 0, 10)).journal, true, 'a delete is')
    const page = await driver.readJournal(ref, 10)
    await driver.ackJournal(ref, page.entries.map((e) => ({ id: e.id, version: e.version })))
    t.equal((await driver.readForMigration(ref, 0, 10)).journal, false, 'acknowledged')
    await driver.deleteQueue(ref)
    const gone = await driver.readForMigration(ref, 0, 10)
    t.same([gone.metadata, gone.journal], [null, true], 'a deleted queue: its reset is pending')
    await driver.ackJournal(ref, [], true)
    t.equal((await driver.readForMigration(ref, 0, 10)).journal, false, 'the reset acknowledged')
  })

  t.test('migration: purge and deleteQueue journal a reset; setting journal again with another token starts afresh', async (t) => {
    const p = project(t, driver)
    const ref = p.ref()
    await postN(driver, ref, 2)
    const j = fence('journal')
    await driver.fenceQueue(ref, j, null)
    t.equal((await driver.readJournal(ref, 10)).reset, false)
    await driver.purge(ref)
    t.equal((await driver.readJournal(ref, 10)).reset, true, 'purge')
    await driver.ackJournal(ref, [], true)
    t.equal((await driver.readJournal(ref, 10)).reset, false, 'acknowledged')
    const [x] = await postN(driver, ref, 1)
    await driver.deleteQueue(ref)
    t.equal((await driver.readJournal(ref, 10)).reset, true, 'deleteQueue')
    await driver.fenceQueue(ref, j, j.token)
    t.equal((await driver.readJournal(ref, 10)).reset, true, 'setting the same journal fence again keeps the journal (a retry)')
    const m = { ...j, state: 'moved' as const }
    await driver.fenceQueue(ref, m, j.token)
    t.equal((await driver.readJournal(ref, 10)).reset, true, 'journal → moved keeps it for the final drain')
    await driver.fenceQueue(ref, null, m.token)
    const j2 = fence('journal')
    await postN(driver, ref, 1)
    await driver.fenceQueue(ref, j2, null)
    const page = await driver.readJournal(ref, 10)
    t.equal(page.reset, false, 'a new journal has no reset')
    t.same(page.entries, [], 'nor entries')
    t.ok(x)
  })

  timed('migration: readForMigration walks FIFO with a cursor; claimed and delayed included, expired left out', async (t, clock) => {
    const p = project(t, driver)
    const ref = p.ref()
    const [a] = await postN(driver, ref, 1, 60)
    const [b, c] = await postN(driver, ref, 2)
    const claim = (await driver.createClaim(ref, { ...CLAIM, limit: 1, ttl: 30 }))!
    // Delays are honoured only on a queue with a default delay.
    await driver.setQueueMetadata(ref, { _default_message_delay: 5 })
    const [dl] = await driver.postMessages(ref, [{ body: '"late"', delay: 30 }], postOpts({ clientId: 'someone' }))
    const [e] = await driver.postMessages(ref, [{ body: '"e"', delay: 0 }], postOpts())
    // a expires, and with it the claim that took it (the claim was shorter: no extension).
    clock.advance(61 * SECOND)
    const all: MessageRecord[] = []
    let after = 0
    let batches = 0
    for (;;) {
      const batch = await driver.readForMigration(ref, after, 2)
      t.ok(batch.records.length <= 2, 'at most limit')
      all.push(...batch.records)
      t.ok(batch.next >= after, 'the cursor never goes back')
      after = batch.next
      batches++
      if (batch.end) break
      t.ok(batches < 10)
    }
    t.same(
      all.map((r) => r.id),
      [b, c, dl, e],
      'FIFO, expired left out',
    )
    t.notOk(all.some((r) => r.id === a))
    const seqs = all.map((r) => r.seq)
    t.same([...seqs].sort((x, y) => x - y), seqs, 'in sequence order')
    const late = all.find((r) => r.id === dl)!
    t.equal(late.body, '"late"')
    t.equal(late.clientId, 'someone')
    t.equal(late.visible - late.created, 30 * SECOND, 'the delay is kept')
    const claimed = all.find((r) => r.claimId !== undefined)
    t.equal(claim.messages[0].id, a, 'the claim took the oldest')
    t.equal(claimed, undefined, 'the claimed message expired with its claim')
    t.equal((await driver.readForMigration(ref, after, 10)).records.length, 0, 'nothing after the end')
    // A live claim is read with its claim record.
    const c2 = (await driver.createClaim(ref, { ...CLAIM, limit: 1 }))!
    const again = await driver.readForMigration(ref, 0, 100)
    const held = again.records.find((r) => r.id === c2.messages[0].id)!
    t.equal(held.claimId, c2.id)
    t.equal(held.claimCount, 1)
    t.same(again.claims.map((x) => x.id), [c2.id])
    t.ok(again.end)
    t.same(again.metadata, { _default_message_delay: 5 }, 'the batch carries the metadata')
    const none = await driver.readForMigration(p.ref('none'), 0, 10)
    t.same([none.records, none.end, none.metadata], [[], true, null], 'a missing queue: empty, at its end, no metadata')
    t.equal(await driver.countForMigration(ref), 4)
  })

  timed('migration: importMessages appends in order, upserts in place, keeps claims; needs the importing fence', async (t, clock) => {
    const p = project(t, driver)
    const ref = p.ref()
    const now = clock()
    const rec = (id: string, i: number, over: Partial<MessageRecord> = {}): MessageRecord => ({
      id,
      seq: 1000 + i,
      body: body(i),
      clientId: 'client-x',
      ttl: 600,
      created: now - 10 * SECOND,
      expires: now + 590 * SECOND,
      visible: now - 10 * SECOND,
      claimCount: 0,
      claimExpires: 0,
      ...over,
    })
    const ids = Array.from({ length: 4 }, () => randomUUID())
    const claimId = randomUUID()
    const token = randomUUID()
    await conflict(t, driver.importMessages(ref, token, { upsert: [rec(ids[0], 0)] }), null, 'no fence')
    const f = fence('importing', token)
    await driver.fenceQueue(ref, f, null)
    await conflict(t, driver.importMessages(ref, randomUUID(), { upsert: [rec(ids[0], 0)] }), f, 'another token')
    // Out of id order on purpose: the copy keeps the order given.
    await driver.importMessages(ref, token, { metadata: { k: 'v' }, upsert: [rec(ids[2], 0), rec(ids[0], 1)] })
    await driver.importMessages(ref, token, {
      upsert: [rec(ids[3], 2, { claimId, claimExpires: now + 100 * SECOND, claimCount: 2 }), rec(ids[1], 3)],
      claims: [{ id: claimId, ttl: 120, expires: now + 100 * SECOND, updated: now - 20 * SECOND }],
    })
    // An upsert of a known id changes its state in place.
    await driver.importMessages(ref, token, { upsert: [rec(ids[0], 1, { ttl: 900, expires: now + 890 * SECOND, claimCount: 1 })], remove: [ids[1], randomUUID()] })
    // A claim imported, then removed by its id (a release on the source).
    const gone = randomUUID()
    await driver.importMessages(ref, token, { claims: [{ id: gone, ttl: 60, expires: now + 60 * SECOND, updated: now }] })
    await driver.importMessages(ref, token, { remove: [gone] })
    // One new id twice in one import: one message, in its first place, with its last state.
    const twice = randomUUID()
    await driver.importMessages(ref, token, {
      upsert: [rec(twice, 4, { ttl: 100, expires: now + 90 * SECOND }), rec(twice, 4, { ttl: 700, expires: now + 690 * SECOND })],
    })
    t.equal(await driver.countForMigration(ref), 4)
    await refused(t, driver.getQueue(ref), ref, f, 'the copy is invisible while importing')
    await driver.fenceQueue(ref, null, token)
    t.same(await driver.getQueue(ref), { k: 'v' }, 'metadata')
    const list = await driver.listMessages(ref, { limit: 10, clientId: CLIENT, echo: true, includeClaimed: true })
    t.same(list.items.map((m) => m.id), [ids[2], ids[0], ids[3], twice], 'appended in the order given; the upsert kept its place; the removed one is gone; the id given twice is there once')
    t.equal(list.items[3]!.ttl, 700, 'with its last state')
    const m0 = list.items[1]
    t.equal(m0.ttl, 900)
    t.equal(m0.claimCount, 1)
    t.equal(m0.age, 10, 'age from the original creation time')
    t.equal(m0.body, body(1))
    const claim = await driver.getClaim(ref, claimId)
    t.ok(claim, 'the claim came along')
    t.equal(await driver.getClaim(ref, gone), null, 'a removed claim is gone')
    t.equal(claim!.ttl, 120)
    t.equal(claim!.age, 20)
    t.same(claim!.messages.map((m) => m.id), [ids[3]], 'still holding its message')
    t.equal(claim!.messages[0].claimCount, 2)
    t.equal(await driver.createClaim(ref, { ...CLAIM, limit: 10 }).then((c) => c?.messages.map((m) => m.id)).then((x) => x?.includes(ids[3])), false, 'not claimable by another')
    const listed = await driver.listMessages(ref, { limit: 10, clientId: 'client-x', echo: false, includeClaimed: true })
    t.same(listed.items, [], 'the client id is kept (echo filtering)')
    await driver.deleteMessage(ref, ids[3], claimId)
    t.equal(await driver.getMessage(ref, ids[3]), null, 'deleted with its claim id')
    clock.advance(101 * SECOND)
  })

  t.test('migration: importMessages reset empties the copy, keeps the fence; dropQueueData removes an importing copy with its fence', async (t) => {
    const p = project(t, driver)
    const ref = p.ref()
    const src = p.ref('src')
    await postN(driver, src, 3)
    // Within one store ids are unique across queues (SQLite): the copy takes fresh ones.
    const batch = await driver.readForMigration(src, 0, 10)
    for (const r of batch.records) r.id = randomUUID()
    const token = randomUUID()
    const f = fence('importing', token)
    await driver.fenceQueue(ref, f, null)
    await driver.importMessages(ref, token, { upsert: batch.records })
    t.equal(await driver.countForMigration(ref), 3)
    await driver.importMessages(ref, token, { reset: true })
    t.equal(await driver.countForMigration(ref), 0, 'reset')
    t.same(await driver.getFence(ref), f, 'fence kept')
    await driver.importMessages(ref, token, { upsert: batch.records.slice(1) })
    t.equal(await driver.countForMigration(ref), 2, 'refilled')
    await conflict(t, driver.dropQueueData(ref, randomUUID()), f, 'another token')
    await driver.dropQueueData(ref, token)
    t.equal(await driver.getFence(ref), null, 'the importing fence goes with the data')
    t.equal(await driver.getQueue(ref), null)
    t.equal(await driver.countForMigration(ref), 0)
  })
}
