/**
 * The storage contract suite: every rule of `shared/storage/contract.ts`, run against any
 * `DataDriver` — each embedded driver in-process, and the proxy's RPC client against a worker.
 *
 * Usage, from a `*.test.ts` file:
 *
 *     import t from 'tap'
 *     await runContract(t, 'sqlite', async () => ({ driver, clock, close }))
 *
 * The factory is called once per run. Its `clock` must be the clock that *drives the driver*:
 * advancing it must move the driver's "now" (message and claim expiry, delays, ages). A driver in
 * another process is tested by serving it over RPC from this process (tests/contract/rpc.test.ts),
 * so every factory can hand the suite a real clock and no subtest is ever skipped. Tests only
 * ever move the clock forward.
 *
 * Each subtest works in a fresh random project and deletes that project's queues when done, so
 * runs can share one store. Expectations are lenient where the wire would be (absent vs
 * undefined optional fields), so the RPC path passes the same suite.
 */
import { randomUUID } from 'node:crypto'
import type t from 'tap'
import type { manualClock } from '../../shared/clock.js'
import { isId } from '../../shared/ids.js'
import { DELETE_DESCRIPTIONS as DELETE_ERRORS, storageErrorHttp } from '../../proxy/storage-errors.js'
import { StorageError } from '../../shared/storage/errors.js'
import { defineMigrationTests } from './migration-suite.js'
import {
  LIST_SCAN_BUDGET,
  POST_CHUNK,
  type DataDriver,
  type ListMessagesOptions,
  type Metadata,
  type NewMessage,
  type PostOptions,
  type QueueRef,
} from '../../shared/storage/contract.js'

/** A tap test object, as tap hands it to a subtest callback (the root `t` fits too). */
export type TapTest = Parameters<Extract<Parameters<typeof t.test>[0], (...args: never[]) => unknown>>[0]

export type ManualClock = ReturnType<typeof manualClock>

/** What a factory hands the suite. */
export interface ContractEnv {
  driver: DataDriver
  /** The clock driving `driver`: expiry tests move it (every factory must provide one). */
  clock: ManualClock
  /** Closes the driver and anything the factory started. */
  close: () => Promise<void>
  /**
   * The driver routes over pools (the pooled driver): it settles `ClaimOptions.deadLetter` with
   * the stores itself and never returns a dead-letter report, so the store-level report cases do
   * not apply; the end-to-end outcome (the message lands in the DLQ) is tested for every driver.
   */
  routes?: boolean
}

export type ContractFactory = () => Promise<ContractEnv>

const SECOND = 1000

/** Runs the whole contract against the driver `factory` makes, as one subtest of `t` named `name`. */
export async function runContract(t: TapTest, name: string, factory: ContractFactory): Promise<void> {
  await t.test(name, async (t) => {
    const env = await factory()
    t.teardown(() => env.close())
    const { driver } = env

    /** A subtest that moves the clock. */
    const timed = (title: string, fn: (t: TapTest, clock: ManualClock) => Promise<void>) => t.test(title, async (t) => fn(t, env.clock))

    defineQueueTests(t, driver)
    defineListQueueTests(t, driver)
    definePostTests(t, driver, timed)
    defineListTests(t, driver)
    defineGetTests(t, driver, timed)
    defineDeleteTests(t, driver, timed)
    definePopTests(t, driver)
    defineClaimTests(t, driver, timed)
    defineDeadLetterTests(t, driver, env.routes === true)
    defineStatsTests(t, driver, timed)
    defineTenancyTests(t, driver)
    // Store-level: a routing driver places queues itself (proxy/pooled-driver.ts).
    if (env.routes !== true) defineMigrationTests(t, driver, timed)
  })
}

type Timed = (title: string, fn: (t: TapTest, clock: ManualClock) => Promise<void>) => unknown

// --- helpers -------------------------------------------------------------------------------

const CLIENT_A = randomUUID()
const CLIENT_B = randomUUID()

/** A fresh project for one test, whose queues are deleted when the test ends. */
function project(t: TapTest, driver: DataDriver): { name: string; ref: (queue?: string) => QueueRef } {
  const name = `p-${randomUUID()}`
  t.teardown(() => dropProject(driver, name))
  return { name, ref: (queue = 'q') => ({ project: name, queue }) }
}

async function dropProject(driver: DataDriver, project: string): Promise<void> {
  for (;;) {
    const page = await driver.listQueues(project, { limit: 100 })
    if (page.items.length === 0) return
    for (const q of page.items) await driver.deleteQueue({ project, queue: q.name })
  }
}

function postOpts(over: Partial<PostOptions> = {}): PostOptions {
  return { clientId: CLIENT_A, defaultTtl: 3600, postBytes: 100, queuePolicy: true, ...over }
}

/**
 * A driver's error as the client reads it: drivers throw typed errors (shared/storage/errors.ts)
 * and the transport words them (proxy/storage-errors.ts). Rejects with the error's code and kind
 * and the mapped status, title and description; anything but a typed error rejects with a code
 * no pattern expects.
 */
async function worded(p: Promise<unknown>): Promise<unknown> {
  try {
    return await p
  } catch (err) {
    if (!(err instanceof StorageError)) throw Object.assign(new Error('not a typed storage error'), { code: 'untyped', cause: err })
    throw Object.assign(new Error(err.message), { code: err.code, kind: err.kind, ...storageErrorHttp(err) })
  }
}

function listOpts(over: Partial<ListMessagesOptions> = {}): ListMessagesOptions {
  return { limit: 20, clientId: CLIENT_B, echo: true, includeClaimed: true, ...over }
}

const bodyOf = (i: number | string): string => JSON.stringify({ n: i })

/** Posts `n` messages (bodies `{"n":i}`) one call, returns their ids. */
async function postN(driver: DataDriver, ref: QueueRef, n: number, over: Partial<NewMessage> = {}, opts?: Partial<PostOptions>) {
  const msgs: NewMessage[] = Array.from({ length: n }, (_, i) => ({ body: bodyOf(i), ...over }))
  return driver.postMessages(ref, msgs, postOpts(opts))
}

const idsOf = (items: { id: string }[]): string[] => items.map((m) => m.id)

/** Every message id of a queue, paging through listMessages by marker (at most `maxPages` pages of 20). */
async function listAllIds(driver: DataDriver, ref: QueueRef, maxPages: number): Promise<string[]> {
  const seen: string[] = []
  let marker: string | undefined
  for (let pages = 0; pages < maxPages; pages++) {
    const page = await driver.listMessages(ref, listOpts({ limit: 20, ...(marker !== undefined && { marker }) }))
    seen.push(...idsOf(page.items))
    if (page.next === undefined) break
    marker = page.next
  }
  return seen
}

const CLAIM = { ttl: 120, grace: 60, limit: 10 }

// --- queues --------------------------------------------------------------------------------

function defineQueueTests(t: TapTest, driver: DataDriver): void {
  t.test('kind and ping', async (t) => {
    t.type(driver.kind, 'string')
    t.ok(driver.kind.length > 0)
    await t.resolves(driver.ping())
  })

  t.test('createQueue / getQueue / setQueueMetadata', async (t) => {
    const p = project(t, driver)
    const meta: Metadata = { description: 'billing ☃', nested: { a: [1, 2, { b: null }] }, _default_message_ttl: 120 }
    t.equal(await driver.getQueue(p.ref()), null, 'missing queue reads as null')
    t.equal(await driver.createQueue(p.ref(), meta), true, 'first create reports created')
    t.same(await driver.getQueue(p.ref()), meta, 'metadata stored as given')
    t.equal(await driver.createQueue(p.ref(), { other: 1 }), false, 'second create reports existing')
    t.same(await driver.getQueue(p.ref()), meta, 'create on an existing queue leaves metadata untouched')

    await driver.setQueueMetadata(p.ref(), { replaced: true })
    t.same(await driver.getQueue(p.ref()), { replaced: true }, 'set replaces the whole object')
    await t.rejects(driver.setQueueMetadata(p.ref('missing'), { a: 1 }), { code: 'not_found' })
    t.equal(await driver.getQueue(p.ref('missing')), null, 'set on a missing queue does not create it')

    t.equal(await driver.createQueue(p.ref('empty'), {}), true)
    t.same(await driver.getQueue(p.ref('empty')), {})
  })

  t.test('racing creates yield exactly one true', async (t) => {
    const p = project(t, driver)
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => driver.createQueue(p.ref('race'), { i })))
    t.equal(results.filter((r) => r).length, 1)
  })

  t.test('deleteQueue removes messages and claims', async (t) => {
    const p = project(t, driver)
    const ids = await postN(driver, p.ref(), 3)
    const claim = await driver.createClaim(p.ref(), { ...CLAIM, limit: 1 })
    t.ok(claim)
    await driver.deleteQueue(p.ref())
    t.equal(await driver.getQueue(p.ref()), null)
    t.same(await driver.stats(p.ref()), { total: 0, claimed: 0, free: 0, delayed: 0 })
    t.equal(await driver.getMessage(p.ref(), ids[1]), null)
    t.equal(await driver.getClaim(p.ref(), claim!.id), null)
    await t.resolves(driver.deleteQueue(p.ref()), 'deleting a missing queue is a no-op')
    await driver.createQueue(p.ref(), {})
    t.same((await driver.listMessages(p.ref(), listOpts())).items, [], 'a recreated queue starts empty')
  })

  t.test('purge removes plain, claimed and delayed messages, keeps the queue', async (t) => {
    const p = project(t, driver)
    const meta = { _default_message_delay: 30, keep: 'me' }
    await driver.createQueue(p.ref(), meta)
    await postN(driver, p.ref(), 3, { delay: 0 })
    await postN(driver, p.ref(), 2, { delay: 60 })
    const claim = await driver.createClaim(p.ref(), { ...CLAIM, limit: 2 })
    t.equal(claim?.messages.length, 2)
    t.equal((await driver.stats(p.ref())).total, 5)
    await driver.purge(p.ref())
    t.same(await driver.stats(p.ref()), { total: 0, claimed: 0, free: 0, delayed: 0 })
    t.same((await driver.listMessages(p.ref(), listOpts({ includeDelayed: true }))).items, [])
    t.equal(await driver.getClaim(p.ref(), claim!.id), null, 'claims are gone')
    t.same(await driver.getQueue(p.ref()), meta, 'queue and metadata kept')
    await postN(driver, p.ref(), 1, { delay: 0 })
    t.equal((await driver.stats(p.ref())).total, 1, 'queue usable after purge')
    await t.resolves(driver.purge(p.ref('missing')), 'purging a missing queue is a no-op')
  })

  t.test('storedBytes: at least the bodies posted, in bounded steps; 0 once consumed and for a missing queue', async (t) => {
    const p = project(t, driver)
    t.equal(await driver.storedBytes(p.ref()), 0, 'a missing queue: 0')
    const big: NewMessage[] = Array.from({ length: 3 }, (_, i) => ({ body: JSON.stringify(`${i}${'x'.repeat(1000)}`) }))
    await driver.postMessages(p.ref(), big, postOpts())
    const three = await driver.storedBytes(p.ref())
    t.ok(three >= 3 * 1003, `the bodies' bytes at least (${three})`)
    await postN(driver, p.ref('other'), 5)
    t.equal(await driver.storedBytes(p.ref()), three, "another queue's messages are not counted")
    // More than one step of the SQLite store (BYTES_STEP = 2,000 messages).
    await postN(driver, p.ref('many'), 2500)
    let sum = 0
    for (let i = 0; i < 2500; i++) sum += Buffer.byteLength(bodyOf(i))
    const many = await driver.storedBytes(p.ref('many'))
    t.ok(many >= sum, `every step counted (${many} >= ${sum})`)
    // SQLite counts exactly the bodies' bytes (Redis: the memory they take, more).
    if (driver.kind === 'sqlite') t.equal(many, sum, 'SQLite: exactly the bodies')
    t.equal((await driver.popMessages(p.ref(), 10)).length, 3)
    t.equal(await driver.storedBytes(p.ref()), 0, 'every message consumed: 0')
    await driver.purge(p.ref('many'))
    t.equal(await driver.storedBytes(p.ref('many')), 0, 'purged: 0')
  })

  t.test('queue names differing in punctuation or case are distinct', async (t) => {
    const p = project(t, driver)
    const names = ['a.b', 'a-b', 'A_b', 'a_b', 'ab', 'AB']
    for (const n of names) await driver.postMessages(p.ref(n), [{ body: JSON.stringify(n) }], postOpts())
    for (const n of names) {
      const page = await driver.listMessages(p.ref(n), listOpts())
      t.same(
        page.items.map((m) => m.body),
        [JSON.stringify(n)],
        `${n} holds only its own message`,
      )
    }
  })
}

function defineListQueueTests(t: TapTest, driver: DataDriver): void {
  t.test('listQueues: byte order, paging, detailed, count', async (t) => {
    const p = project(t, driver)
    const names = ['b', 'B', 'a', 'a.b', 'a-b', 'A_b', '_x', 'Z', 'a_b', '0', 'ab.c']
    for (const n of names) await driver.createQueue(p.ref(n), { name: n })
    const sorted = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))

    const all = await driver.listQueues(p.name, { limit: 50 })
    t.same(all.items.map((q) => q.name), sorted, 'sorted by name in byte order')
    t.equal(all.next, sorted[sorted.length - 1], 'a non-empty page has next, even when short')
    t.notOk(all.items[0].metadata, 'no metadata unless detailed')
    t.equal(all.count, undefined, 'no count unless asked')

    const seen: string[] = []
    let marker: string | undefined
    let pages = 0
    for (; pages < 10; pages++) {
      const page = await driver.listQueues(p.name, { limit: 3, marker })
      if (page.items.length === 0) {
        t.notOk(page.next, 'the empty page ends the listing, with no next')
        break
      }
      seen.push(...page.items.map((q) => q.name))
      t.equal(page.next, page.items[page.items.length - 1].name, 'next is the last name')
      marker = page.next
    }
    t.equal(pages, 4, 'three pages of 3, 3, 3, 2, then an empty one')
    t.same(seen, sorted, 'pages cover every queue once, in order')

    const after = await driver.listQueues(p.name, { limit: 50, marker: 'a' })
    t.same(after.items.map((q) => q.name), sorted.filter((n) => n > 'a'), 'marker is exclusive')

    const exact = await driver.listQueues(p.name, { limit: names.length })
    t.equal(exact.next, sorted[sorted.length - 1], 'an exactly full page has next')
    const beyond = await driver.listQueues(p.name, { limit: 5, marker: exact.next })
    t.same(beyond.items, [])
    t.notOk(beyond.next)

    const detailed = await driver.listQueues(p.name, { limit: 2, detailed: true })
    t.same(detailed.items, sorted.slice(0, 2).map((n) => ({ name: n, metadata: { name: n } })))

    const counted = await driver.listQueues(p.name, { limit: 2, withCount: true, name: 'zzz' })
    t.equal(counted.count, names.length, 'count covers every queue, ignoring filters and paging')
    t.same(counted.items, [])

    const empty = await driver.listQueues(`p-${randomUUID()}`, { limit: 5, withCount: true })
    t.same(empty.items, [])
    t.equal(empty.count, 0)
  })

  t.test('listQueues: literal name substring and exact metadata filters', async (t) => {
    const p = project(t, driver)
    await driver.createQueue(p.ref('a_b'), { node: 31, kind: 'x', flag: true })
    await driver.createQueue(p.ref('axb'), { node: '31', kind: 'x', flag: false })
    await driver.createQueue(p.ref('a.b'), { node: 32, kind: 'y' })
    await driver.createQueue(p.ref('A_B'), {})
    await driver.createQueue(p.ref('ab'), { kind: 'x', flag: true })

    const byName = async (name: string) => (await driver.listQueues(p.name, { limit: 20, name })).items.map((q) => q.name)
    t.same(await byName('_'), ['A_B', 'a_b'], 'underscore is literal, not a wildcard')
    t.same(await byName('.'), ['a.b'], 'dot is literal')
    t.same(await byName('b'), ['a.b', 'a_b', 'ab', 'axb'], 'substring anywhere')
    t.same(await byName('B'), ['A_B'], 'case-sensitive')
    t.same(await byName('%'), [])

    const byFilter = async (filters: Record<string, string | number | boolean>, extra: { name?: string } = {}) =>
      (await driver.listQueues(p.name, { limit: 20, filters, ...extra })).items.map((q) => q.name)
    t.same(await byFilter({ node: 31 }), ['a_b'], 'numbers match numbers only')
    t.same(await byFilter({ node: '31' }), ['axb'], 'strings match strings only')
    t.same(await byFilter({ kind: 'x', flag: true }), ['a_b', 'ab'], 'filters combine with AND')
    t.same(await byFilter({ flag: false }), ['axb'])
    t.same(await byFilter({ missing: 1 }), [])
    t.same(await byFilter({ kind: 'x' }, { name: 'x' }), ['axb'], 'name and filters combine')

    const first = await driver.listQueues(p.name, { limit: 1, filters: { kind: 'x' } })
    t.same(first.items.map((q) => q.name), ['a_b'])
    t.equal(first.next, 'a_b')
    const second = await driver.listQueues(p.name, { limit: 1, filters: { kind: 'x' }, marker: first.next })
    t.same(second.items.map((q) => q.name), ['ab'], 'paging skips non-matching queues to fill the page')
    const detailed = await driver.listQueues(p.name, { limit: 1, filters: { node: 32 }, detailed: true })
    t.same(detailed.items, [{ name: 'a.b', metadata: { node: 32, kind: 'y' } }])
  })
}

// --- messages ------------------------------------------------------------------------------

function definePostTests(t: TapTest, driver: DataDriver, timed: Timed): void {
  t.test('postMessages: ids, lazy queue, FIFO across posts', async (t) => {
    const p = project(t, driver)
    t.equal(await driver.getQueue(p.ref()), null)
    const first = await driver.postMessages(p.ref(), [{ body: bodyOf(0) }, { body: bodyOf(1) }, { body: bodyOf(2) }], postOpts())
    t.same(await driver.getQueue(p.ref()), {}, 'posting creates the queue with no metadata')
    const second = await driver.postMessages(p.ref(), [{ body: bodyOf(3) }, { body: bodyOf(4) }], postOpts())
    const ids = [...first, ...second]
    t.equal(ids.length, 5)
    t.ok(ids.every((id) => isId(id)), 'ids are UUIDs')
    t.equal(new Set(ids).size, 5, 'ids are distinct')
    const page = await driver.listMessages(p.ref(), listOpts())
    t.same(idsOf(page.items), ids, 'listed in posting order')
    t.same(page.items.map((m) => m.body), [0, 1, 2, 3, 4].map(bodyOf))
    const m = page.items[0]
    t.equal(m.ttl, 3600, 'server default TTL')
    t.equal(m.claimCount, 0)
    t.notOk(m.claimId)
    t.type(m.created, 'number')
    t.ok(m.age >= 0 && m.age <= 5)
  })

  t.test('postMessages: bodies are kept as exact JSON text', async (t) => {
    const p = project(t, driver)
    const bodies = [
      '{"a": 1,  "b" : [true, null]}',
      'null',
      '"\\u00e9t\\u00e9 ☃ 🚀"',
      '12345678901234567890123',
      '1.0',
      '[]',
      '{"big":9007199254740993,"float":1e400}',
    ]
    const ids = await driver.postMessages(p.ref(), bodies.map((body) => ({ body })), postOpts())
    t.same((await driver.listMessages(p.ref(), listOpts())).items.map((m) => m.body), bodies, 'list')
    t.same((await driver.getMessages(p.ref(), ids)).map((m) => m.body), bodies, 'bulk get')
    t.equal((await driver.getMessage(p.ref(), ids[0]))?.body, bodies[0], 'get')
    const claim = await driver.createClaim(p.ref(), { ...CLAIM, limit: 3 })
    t.same(claim?.messages.map((m) => m.body), bodies.slice(0, 3), 'claim')
    t.same((await driver.popMessages(p.ref(), 10)).map((m) => m.body), bodies.slice(3), 'pop')
  })

  t.test('postMessages: TTL defaults', async (t) => {
    const p = project(t, driver)
    const ttlOf = async (ref: QueueRef, msg: NewMessage, queuePolicy: boolean) => {
      const [id] = await driver.postMessages(ref, [msg], postOpts({ defaultTtl: 600, queuePolicy }))
      return (await driver.getMessage(ref, id))?.ttl
    }
    t.equal(await ttlOf(p.ref(), { body: '1' }, true), 600, 'server default when the queue says nothing')
    await driver.createQueue(p.ref('t'), { _default_message_ttl: 120 })
    t.equal(await ttlOf(p.ref('t'), { body: '1' }, true), 120, "queue's _default_message_ttl (v2)")
    t.equal(await ttlOf(p.ref('t'), { body: '1' }, false), 600, 'queue limits ignored (v1.1)')
    t.equal(await ttlOf(p.ref('t'), { body: '1', ttl: 300 }, true), 300, 'explicit ttl wins')
    t.equal(await ttlOf(p.ref('t'), { body: '1', ttl: 300 }, false), 300)
  })

  t.test('postMessages: delay honoured only with a queue default delay', async (t) => {
    const p = project(t, driver)
    const visibleBodies = async (ref: QueueRef) =>
      (await driver.listMessages(ref, listOpts({ includeDelayed: false }))).items.map((m) => m.body)

    await driver.postMessages(p.ref('plain'), [{ body: '"d"', delay: 60 }], postOpts())
    t.same(await visibleBodies(p.ref('plain')), ['"d"'], 'no queue default delay: per-message delay ignored')
    t.equal((await driver.createClaim(p.ref('plain'), CLAIM))?.messages.length, 1, 'and the message is claimable')

    await driver.createQueue(p.ref('delayed'), { _default_message_delay: 30 })
    await driver.postMessages(
      p.ref('delayed'),
      [{ body: '"explicit"', delay: 60 }, { body: '"default"' }, { body: '"zero"', delay: 0 }],
      postOpts(),
    )
    t.same(await visibleBodies(p.ref('delayed')), ['"zero"'], 'explicit and default delays apply')
    t.same((await driver.createClaim(p.ref('delayed'), CLAIM))?.messages.map((m) => m.body), ['"zero"'])

    await driver.postMessages(p.ref('delayed'), [{ body: '"v11"', delay: 60 }], postOpts({ queuePolicy: false }))
    t.same(await visibleBodies(p.ref('delayed')), ['"zero"', '"v11"'], 'v1.1 posts ignore delay')
  })

  timed('postMessages: delayed messages become visible on time, FIFO kept', async (t, clock) => {
    const p = project(t, driver)
    await driver.createQueue(p.ref(), { _default_message_delay: 30 })
    await driver.postMessages(p.ref(), [{ body: '"late"', delay: 60 }, { body: '"default"' }, { body: '"now"', delay: 0 }], postOpts())
    const visible = async () => (await driver.listMessages(p.ref(), listOpts({ includeDelayed: false }))).items.map((m) => m.body)
    t.same(await visible(), ['"now"'])
    clock.advance(31 * SECOND)
    t.same(await visible(), ['"default"', '"now"'])
    clock.advance(30 * SECOND)
    t.same(await visible(), ['"late"', '"default"', '"now"'])
    t.same((await driver.createClaim(p.ref(), CLAIM))?.messages.map((m) => m.body), ['"late"', '"default"', '"now"'])
  })

  timed('stats: delayed messages are free, counted as delayed until their delay runs out', async (t, clock) => {
    const p = project(t, driver)
    await driver.createQueue(p.ref(), { _default_message_delay: 30 })
    await driver.postMessages(p.ref(), [{ body: '"late"', delay: 60 }, { body: '"default"' }, { body: '"now"', delay: 0 }, { body: '"now2"', delay: 0 }], postOpts())
    t.equal((await driver.createClaim(p.ref(), { ...CLAIM, limit: 1 }))?.messages.length, 1)
    t.match(await driver.stats(p.ref()), { total: 4, claimed: 1, free: 3, delayed: 2 }, 'two delayed, among the free')
    clock.advance(31 * SECOND)
    t.match(await driver.stats(p.ref()), { total: 4, claimed: 1, free: 3, delayed: 1 }, 'the default delay ran out')
    clock.advance(30 * SECOND)
    t.match(await driver.stats(p.ref()), { total: 4, claimed: 1, free: 3, delayed: 0 }, 'every delay ran out')
    t.match(await driver.stats(p.ref('missing')), { total: 0, delayed: 0 }, 'a missing queue: zero')
    const plain = p.ref('plain')
    await driver.postMessages(plain, [{ body: '"d"', delay: 60 }], postOpts())
    t.match(await driver.stats(plain), { total: 1, free: 1, delayed: 0 }, 'no queue default delay: nothing delayed')
    // A message that expires before its delay runs out is counted nowhere once expired, whatever
    // the collector has or has not removed yet.
    const short = p.ref('short')
    await driver.createQueue(short, { _default_message_delay: 30 })
    await driver.postMessages(short, [{ body: '"gone"', ttl: 60, delay: 120 }, { body: '"stays"', ttl: 3600, delay: 0 }], postOpts())
    t.match(await driver.stats(short), { total: 2, free: 2, delayed: 1 })
    clock.advance(61 * SECOND)
    t.match(await driver.stats(short), { total: 1, free: 1, delayed: 0 }, 'expired while delayed: not delayed')
  })

  t.test('postMessages: _max_messages_post_size', async (t) => {
    const p = project(t, driver)
    await driver.createQueue(p.ref(), { _max_messages_post_size: 100 })
    await t.rejects(worded(driver.postMessages(p.ref(), [{ body: '1' }], postOpts({ postBytes: 101 }))), {
      code: 'bad_request',
      kind: 'post_too_large',
      status: 400,
      title: 'Invalid API request',
      description: 'Message collection size is too large. Max size 100',
    })
    t.equal((await driver.stats(p.ref())).total, 0, 'nothing stored')
    t.equal((await driver.postMessages(p.ref(), [{ body: '1' }], postOpts({ postBytes: 100 }))).length, 1, 'at the limit')
    t.equal(
      (await driver.postMessages(p.ref(), [{ body: '1' }], postOpts({ postBytes: 101, queuePolicy: false }))).length,
      1,
      'v1.1 ignores the queue limit',
    )
    // A post larger than one chunk is checked before anything is staged.
    await t.rejects(worded(driver.postMessages(p.ref(), Array.from({ length: POST_CHUNK * 2 }, () => ({ body: '1' })), postOpts({ postBytes: 101 }))), {
      code: 'bad_request',
      kind: 'post_too_large',
    })
    t.equal((await driver.stats(p.ref())).total, 2, 'nothing of the large post stored')
  })

  timed('postMessages: maxMessages (a quota of unexpired messages per queue)', async (t, clock) => {
    const p = project(t, driver)
    const ref = p.ref()
    const quota = (n: number) => postOpts({ maxMessages: n })
    const full = { code: 'quota_exceeded', kind: 'queue_full', status: 403, title: 'Quota exceeded' }
    await t.rejects(worded(driver.postMessages(ref, Array.from({ length: 4 }, () => ({ body: '1' })), quota(3))), full, 'more than the quota at once')
    t.equal((await driver.stats(ref)).total, 0, 'nothing stored')
    t.equal((await driver.postMessages(ref, [{ body: '1', ttl: 60 }, { body: '2' }], quota(3))).length, 2)
    t.equal((await driver.postMessages(ref, [{ body: '3' }], quota(3))).length, 1, 'up to the quota')
    await t.rejects(worded(driver.postMessages(ref, [{ body: '4' }], quota(3))), { ...full, description: `Queue ${ref.queue} may hold at most 3 messages (this project's quota); consume some, or ask for a larger quota.` })
    t.equal((await driver.postMessages(ref, [{ body: '4' }], postOpts())).length, 1, 'a post without a quota is not limited')
    await t.rejects(worded(driver.postMessages(ref, [{ body: '5' }], quota(4))), full, 'the post without a quota counts for the next one with a quota')
    t.equal((await driver.postMessages(ref, [{ body: '5' }], quota(5))).length, 1)
    clock.advance(61 * SECOND)
    t.equal((await driver.postMessages(ref, [{ body: '6' }], quota(5))).length, 1, 'an expired message no longer counts, collected or not')
    await t.rejects(worded(driver.postMessages(ref, [{ body: '7' }], quota(5))), full)
    const [first] = (await driver.listMessages(ref, listOpts())).items
    await driver.deleteMessage(ref, first!.id)
    t.equal((await driver.postMessages(ref, [{ body: '7' }], quota(5))).length, 1, 'a deleted message makes room')
    const claim = await driver.createClaim(ref, CLAIM)
    t.ok(claim !== null && claim.messages.length > 0)
    await t.rejects(worded(driver.postMessages(ref, [{ body: '8' }], quota(5))), full, 'claimed messages count')
    t.equal((await driver.stats(ref)).total, 5)
    const q2 = p.ref('big')
    await t.rejects(worded(driver.postMessages(q2, Array.from({ length: POST_CHUNK * 2 }, () => ({ body: '1' })), quota(POST_CHUNK * 2 - 1))), full, 'a large post is refused before anything is staged')
    t.equal((await driver.stats(q2)).total, 0, 'nothing of the large post stored')
    t.equal((await driver.postMessages(q2, Array.from({ length: POST_CHUNK * 2 }, () => ({ body: '1' })), quota(POST_CHUNK * 2))).length, POST_CHUNK * 2, 'a large post up to the quota')
    await t.rejects(worded(driver.postMessages(q2, [{ body: '1' }], quota(POST_CHUNK * 2))), full, 'and the queue is full')
    const k = postOpts({ maxMessages: 1, idempotencyKey: 'quota-k', idempotencyWindow: 60 })
    const q3 = p.ref('k')
    const ids = await driver.postMessages(q3, [{ body: '1' }], k)
    t.same(await driver.postMessages(q3, [{ body: '1' }], k), ids, 'an idempotent replay is answered, full queue or not')
  })

  t.test('queue policy: a metadata change applies to the next post and listing', async (t) => {
    const p = project(t, driver)
    const ref = p.ref()
    await driver.createQueue(ref, { _default_message_ttl: 120 })
    const [a] = await driver.postMessages(ref, [{ body: '"a"', delay: 60 }], postOpts())
    t.equal((await driver.getMessage(ref, a))?.ttl, 120, 'first default TTL')
    t.equal((await driver.listMessages(ref, listOpts())).includeDelayed, true, 'no default delay: delayed always listed')

    await driver.setQueueMetadata(ref, { _default_message_ttl: 240, _default_message_delay: 30, _max_messages_post_size: 50 })
    const [b] = await driver.postMessages(ref, [{ body: '"b"' }], postOpts({ postBytes: 50 }))
    t.equal((await driver.getMessage(ref, b))?.ttl, 240, 'new default TTL')
    const page = await driver.listMessages(ref, listOpts())
    t.equal(page.includeDelayed, false, 'new default delay: delayed not listed unless asked')
    t.same(page.items.map((m) => m.body), ['"a"'], 'b waits out the new default delay')
    await t.rejects(worded(driver.postMessages(ref, [{ body: '"c"' }], postOpts({ postBytes: 51 }))), {
      code: 'bad_request',
      kind: 'post_too_large',
      description: 'Message collection size is too large. Max size 50',
    })

    await driver.setQueueMetadata(ref, { description: 'no reserved keys' })
    const [d] = await driver.postMessages(ref, [{ body: '"d"', delay: 60 }], postOpts({ postBytes: 5000, defaultTtl: 600 }))
    t.equal((await driver.getMessage(ref, d))?.ttl, 600, 'server default TTL again')
    const after = await driver.listMessages(ref, listOpts({ includeDelayed: false }))
    t.equal(after.includeDelayed, true, 'no default delay any more')
    t.ok(after.items.some((m) => m.id === d), 'and the per-message delay is ignored again')
  })

  t.test('postMessages: a post larger than POST_CHUNK is stored whole, in order, with every id', async (t) => {
    const p = project(t, driver)
    const before = await postN(driver, p.ref(), 2)
    const n = POST_CHUNK * 2 + 5
    const ids = await postN(driver, p.ref(), n)
    t.equal(ids.length, n)
    t.equal(new Set(ids).size, n, 'distinct ids')
    const after = await postN(driver, p.ref(), 1)
    const seen = await listAllIds(driver, p.ref(), 100)
    t.same(seen, [...before, ...ids, ...after], 'FIFO across the chunks and the posts around them')
    const stats = await driver.stats(p.ref())
    t.equal(stats.total, n + 3)
    const claim = await driver.createClaim(p.ref(), { ttl: 60, grace: 60, limit: 5 })
    t.same(idsOf(claim?.messages ?? []), [...before, ...ids.slice(0, 3)], 'claims take them in order')
  })

  t.test('postMessages: concurrent large posts to one queue are each stored whole, none interleaved', async (t) => {
    const p = project(t, driver)
    const n = POST_CHUNK * 2 + 5
    // Four at once: each large post holds the queue in turn (three wait for the first together).
    const posts = await Promise.allSettled([0, 1, 2, 3].map(() => postN(driver, p.ref(), n)))
    t.same(
      posts.map((r) => r.status),
      ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled'],
      posts.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok')).join('; '),
    )
    const idLists = posts.map((r) => (r.status === 'fulfilled' ? r.value : []))
    t.equal((await driver.stats(p.ref())).total, 4 * n, 'every message of every post, nothing more')
    const seen = await listAllIds(driver, p.ref(), 200)
    // Each post's messages are contiguous and in order: the posts did not interleave.
    const order = [...idLists].sort((a, b) => seen.indexOf(a[0]!) - seen.indexOf(b[0]!))
    t.same(seen, order.flat(), 'each post whole and in order, one after another')
  })

  t.test('postMessages: idempotency key', async (t) => {
    const p = project(t, driver)
    const key = { idempotencyKey: 'k-1', idempotencyWindow: 300 }
    const first = await postN(driver, p.ref(), 3, {}, key)
    t.same(await postN(driver, p.ref(), 3, {}, key), first, 'same key, same ids')
    t.same(await postN(driver, p.ref(), 7, {}, key), first, 'another body under the same key: the original answer')
    t.equal((await driver.stats(p.ref())).total, 3, 'stored once')
    const other = await postN(driver, p.ref('q2'), 3, {}, key)
    t.equal(other.filter((id) => first.includes(id)).length, 0, 'scoped to the queue')
    const concurrent = await Promise.all([1, 2, 3].map(() => postN(driver, p.ref('q3'), 2, {}, { ...key, idempotencyKey: 'k-2' })))
    t.same(concurrent[1], concurrent[0], 'concurrent posts with one key share one answer')
    t.same(concurrent[2], concurrent[0])
    t.equal((await driver.stats(p.ref('q3'))).total, 2, 'and one copy')
    const large = await postN(driver, p.ref('q4'), POST_CHUNK + 3, {}, { ...key, idempotencyKey: 'k-3' })
    t.same(await postN(driver, p.ref('q4'), POST_CHUNK + 3, {}, { ...key, idempotencyKey: 'k-3' }), large, 'a large post too')
    t.equal((await driver.stats(p.ref('q4'))).total, POST_CHUNK + 3)
  })
}

function defineListTests(t: TapTest, driver: DataDriver): void {
  t.test('listMessages: pages, markers, next', async (t) => {
    const p = project(t, driver)
    const ids = await postN(driver, p.ref(), 7)
    const seen: string[] = []
    let marker: string | undefined
    let pages = 0
    for (; pages < 10; pages++) {
      const page = await driver.listMessages(p.ref(), listOpts({ limit: 3, marker }))
      if (page.items.length === 0) {
        t.notOk(page.next, 'the empty page ends the listing, with no next')
        break
      }
      seen.push(...idsOf(page.items))
      t.type(page.next, 'string', 'a non-empty page has next, even when short')
      marker = page.next
    }
    t.equal(pages, 3, 'pages of 3, 3, 1, then an empty one')
    t.same(seen, ids, 'every message once, in order')

    const six = project(t, driver)
    const sixIds = await postN(driver, six.ref(), 6)
    const p1 = await driver.listMessages(six.ref(), listOpts({ limit: 3 }))
    const p2 = await driver.listMessages(six.ref(), listOpts({ limit: 3, marker: p1.next }))
    t.same(idsOf([...p1.items, ...p2.items]), sixIds)
    t.type(p2.next, 'string', 'an exactly full last page has next')
    const p3 = await driver.listMessages(six.ref(), listOpts({ limit: 3, marker: p2.next }))
    t.same(p3.items, [], 'the end is an empty page')
    t.notOk(p3.next)

    // A marker stays valid after the message it names is gone.
    await driver.deleteMessages(six.ref(), idsOf(p1.items))
    const again = await driver.listMessages(six.ref(), listOpts({ limit: 3, marker: p1.next }))
    t.same(idsOf(again.items), idsOf(p2.items))
  })

  t.test('listMessages: unknown marker and missing queue give an empty page', async (t) => {
    const p = project(t, driver)
    await postN(driver, p.ref(), 3)
    for (const marker of ['not-a-marker', randomUUID(), '-1', '1.5', 'x'.repeat(300)]) {
      const page = await driver.listMessages(p.ref(), listOpts({ marker }))
      t.same(page.items, [], `marker ${marker.slice(0, 20)}`)
      t.notOk(page.next)
    }
    const missing = await driver.listMessages(p.ref('missing'), listOpts())
    t.same(missing.items, [])
    t.notOk(missing.next)
    t.equal(missing.includeDelayed, true, 'a missing queue has no default delay')
  })

  t.test('listMessages: echo filter scans until the page is full', async (t) => {
    const p = project(t, driver)
    const own1 = await postN(driver, p.ref(), 25, {}, { clientId: CLIENT_A })
    const other = await postN(driver, p.ref(), 3, {}, { clientId: CLIENT_B })
    const own2 = await postN(driver, p.ref(), 2, {}, { clientId: CLIENT_A })

    const asA = (over: Partial<ListMessagesOptions>) => driver.listMessages(p.ref(), listOpts({ clientId: CLIENT_A, ...over }))
    const page1 = await asA({ echo: false, limit: 2 })
    t.same(idsOf(page1.items), other.slice(0, 2), "skips the caller's own messages")
    t.ok(page1.next)
    const page2 = await asA({ echo: false, limit: 2, marker: page1.next })
    t.same(idsOf(page2.items), other.slice(2))
    t.ok(page2.next)
    const page3 = await asA({ echo: false, limit: 2, marker: page2.next })
    t.same(page3.items, [], "the caller's later messages stay skipped")
    t.notOk(page3.next)
    t.same(idsOf((await asA({ echo: true, limit: 30 })).items), [...own1, ...other, ...own2], 'echo includes them')
    t.same(idsOf((await driver.listMessages(p.ref(), listOpts({ clientId: CLIENT_B, echo: false, limit: 30 }))).items), [...own1, ...own2])
  })

  t.test('listMessages: bounded scan — short pages with next past a filtered backlog, every match once', async (t) => {
    const p = project(t, driver)
    // A backlog the caller does not see (its own posts, echo off), longer than two budgets,
    // with visible messages interleaved after it.
    const hidden = LIST_SCAN_BUDGET * 2 + 10
    await postN(driver, p.ref(), hidden, {}, { clientId: CLIENT_A })
    const seen1 = await postN(driver, p.ref(), 3, {}, { clientId: CLIENT_B })
    await postN(driver, p.ref(), 5, {}, { clientId: CLIENT_A })
    const seen2 = await postN(driver, p.ref(), 4, {}, { clientId: CLIENT_B })
    const asA = (marker?: string) => driver.listMessages(p.ref(), listOpts({ clientId: CLIENT_A, echo: false, limit: 5, ...(marker !== undefined && { marker }) }))
    const first = await asA()
    t.same(first.items, [], 'the first page examined one budget of hidden messages: empty')
    t.type(first.next, 'string', 'an empty page cut by the budget has a next marker')
    const got: string[] = []
    let marker: string | undefined
    let pages = 0
    let last = first
    for (; pages < 50; pages++) {
      last = await asA(marker)
      got.push(...idsOf(last.items))
      if (last.next === undefined) break
      t.not(last.next, marker, 'the marker moves forward')
      marker = last.next
    }
    t.same(got, [...seen1, ...seen2], 'every visible message once, in FIFO order')
    t.same(last.items, [], 'the walk ends on an empty page')
    t.ok(pages >= 2 && pages <= Math.ceil((hidden + 12) / LIST_SCAN_BUDGET) + 3, `pages walked: ${pages}`)
  })

  t.test('listMessages: bounded scan past delayed messages', async (t) => {
    const p = project(t, driver)
    await driver.createQueue(p.ref(), { _default_message_delay: 600 })
    await postN(driver, p.ref(), LIST_SCAN_BUDGET + 20)
    const visible = await postN(driver, p.ref(), 2, { delay: 0 })
    const first = await driver.listMessages(p.ref(), listOpts({ limit: 10 }))
    t.equal(first.includeDelayed, false)
    t.same(first.items, [], 'one budget of delayed messages examined, none listed')
    t.type(first.next, 'string')
    const second = await driver.listMessages(p.ref(), listOpts({ limit: 10, marker: first.next }))
    t.same(idsOf(second.items), visible, 'the next page carries on past them')
  })

  t.test('listMessages: include_claimed', async (t) => {
    const p = project(t, driver)
    const ids = await postN(driver, p.ref(), 24)
    const claims = [
      await driver.createClaim(p.ref(), { ...CLAIM, limit: 20 }),
      await driver.createClaim(p.ref(), { ...CLAIM, limit: 2 }),
    ]
    const free = await driver.listMessages(p.ref(), listOpts({ includeClaimed: false, limit: 2 }))
    t.same(idsOf(free.items), ids.slice(22), 'claimed messages skipped, scanning past them')
    t.ok(free.items.every((m) => !m.claimId))
    const all = await driver.listMessages(p.ref(), listOpts({ includeClaimed: true, limit: 20 }))
    t.same(idsOf(all.items), ids.slice(0, 20))
    t.ok(all.items.every((m) => m.claimId === claims[0]!.id && m.claimCount === 1), 'claimed messages carry the claim')
  })

  t.test('listMessages: include_delayed and the queue default rule', async (t) => {
    const p = project(t, driver)
    await postN(driver, p.ref('plain'), 2)
    const plain = await driver.listMessages(p.ref('plain'), listOpts())
    t.equal(plain.includeDelayed, true, 'undefined → included when the queue has no default delay')
    t.equal(plain.items.length, 2)
    const plainFalse = await driver.listMessages(p.ref('plain'), listOpts({ includeDelayed: false }))
    t.equal(plainFalse.includeDelayed, true, 'forced on when the queue has no default delay (docs/api.md; zaqar/transport/wsgi/v2_0/messages.py)')

    await driver.createQueue(p.ref('d'), { _default_message_delay: 30 })
    const [delayed] = await driver.postMessages(p.ref('d'), [{ body: '1' }], postOpts())
    const [ready] = await driver.postMessages(p.ref('d'), [{ body: '2', delay: 0 }], postOpts())
    const byDefault = await driver.listMessages(p.ref('d'), listOpts())
    t.equal(byDefault.includeDelayed, false, 'undefined → excluded when the queue has a default delay')
    t.same(idsOf(byDefault.items), [ready])
    const included = await driver.listMessages(p.ref('d'), listOpts({ includeDelayed: true }))
    t.equal(included.includeDelayed, true)
    t.same(idsOf(included.items), [delayed, ready])
    const excluded = await driver.listMessages(p.ref('d'), listOpts({ includeDelayed: false }))
    t.equal(excluded.includeDelayed, false)
    t.same(idsOf(excluded.items), [ready])

    // Delayed messages can outlive the queue setting that delayed them.
    await driver.setQueueMetadata(p.ref('d'), {})
    const forced = await driver.listMessages(p.ref('d'), listOpts({ includeDelayed: false }))
    t.equal(forced.includeDelayed, true)
    t.same(idsOf(forced.items), [delayed, ready], 'and then delayed messages are listed')
  })
}

function defineGetTests(t: TapTest, driver: DataDriver, timed: Timed): void {
  t.test('getMessage', async (t) => {
    const p = project(t, driver)
    await driver.createQueue(p.ref(), { _default_message_delay: 30 })
    const [a, b, delayed] = await driver.postMessages(
      p.ref(),
      [{ body: '"a"', delay: 0, ttl: 300 }, { body: '"b"', delay: 0 }, { body: '"c"' }],
      postOpts(),
    )
    const m = await driver.getMessage(p.ref(), a)
    t.match(m, { id: a, ttl: 300, body: '"a"', claimCount: 0 })
    t.notOk(m?.claimId)
    const claim = await driver.createClaim(p.ref(), { ...CLAIM, limit: 1 })
    t.match(await driver.getMessage(p.ref(), a), { id: a, claimId: claim!.id, claimCount: 1 }, 'claimed message, with its claim')
    t.match(await driver.getMessage(p.ref(), delayed), { id: delayed, body: '"c"' }, 'delayed message')
    t.equal(await driver.getMessage(p.ref(), randomUUID()), null, 'unknown id')
    t.equal(await driver.getMessage(p.ref(), 'not-an-id'), null, 'malformed id')
    t.equal(await driver.getMessage(p.ref(), b.toUpperCase()), null, 'ids are exact')
    t.equal(await driver.getMessage(p.ref('other'), b), null, 'id from another queue')
    t.equal(await driver.getMessage(p.ref('missing'), b), null, 'missing queue')
  })

  t.test('getMessages', async (t) => {
    const p = project(t, driver)
    const ids = await postN(driver, p.ref(), 5)
    const [foreign] = await postN(driver, p.ref('other'), 1)
    const claim = await driver.createClaim(p.ref(), { ...CLAIM, limit: 1 })
    const got = await driver.getMessages(p.ref(), [ids[4], 'bad', ids[2], randomUUID(), ids[0], ids[2], foreign])
    t.same(idsOf(got), [ids[0], ids[2], ids[4]], 'found ones, once each, in queue order')
    t.equal(got[0].claimId, claim!.id, 'claimed messages included')
    t.same(await driver.getMessages(p.ref(), []), [])
    t.same(await driver.getMessages(p.ref(), ['bad', randomUUID()]), [])
    t.same(await driver.getMessages(p.ref('missing'), ids), [])
  })

  timed('expiry is exact at read time', async (t, clock) => {
    const p = project(t, driver)
    const [short] = await driver.postMessages(p.ref(), [{ body: '"short"', ttl: 60 }], postOpts())
    const [long] = await driver.postMessages(p.ref(), [{ body: '"long"', ttl: 3600 }], postOpts())
    clock.advance(59 * SECOND)
    t.ok(await driver.getMessage(p.ref(), short), 'alive before its TTL')
    clock.advance(2 * SECOND)
    t.equal(await driver.getMessage(p.ref(), short), null, 'get')
    t.same(idsOf(await driver.getMessages(p.ref(), [short, long])), [long], 'bulk get')
    t.same(idsOf((await driver.listMessages(p.ref(), listOpts())).items), [long], 'list')
    t.match(await driver.stats(p.ref()), { total: 1, oldest: { id: long } }, 'stats')
    const claim = await driver.createClaim(p.ref(), CLAIM)
    t.same(idsOf(claim?.messages ?? []), [long], 'claim')
    await driver.releaseClaim(p.ref(), claim!.id)
    t.same(idsOf(await driver.popMessages(p.ref(), 5)), [long], 'pop')
    await t.resolves(driver.deleteMessage(p.ref(), short), 'deleting an expired message is a no-op')
  })

  timed('message age and created follow the clock', async (t, clock) => {
    const p = project(t, driver)
    const postedAt = clock()
    const [id] = await postN(driver, p.ref(), 1)
    clock.advance(42 * SECOND + 500)
    const m = await driver.getMessage(p.ref(), id)
    t.equal(m?.created, postedAt)
    t.equal(m?.age, 42)
  })
}

function defineDeleteTests(t: TapTest, driver: DataDriver, timed: Timed): void {
  const claimed = { code: 'message_claimed', kind: 'message_claimed', status: 403, description: DELETE_ERRORS.claimed }
  const notClaimed = { code: 'claim_invalid', kind: 'claim_not_held', status: 400, description: DELETE_ERRORS.notClaimed }
  const claimGone = { code: 'claim_invalid', kind: 'claim_gone', status: 400, description: DELETE_ERRORS.claimGone }

  t.test('deleteMessage: the claim rules of docs/api.md (zaqar/storage/redis/messages.py)', async (t) => {
    const p = project(t, driver)
    const ref = p.ref()
    const [c1msg, c2msg, free1, free2] = await postN(driver, ref, 4)
    const c1 = (await driver.createClaim(ref, { ...CLAIM, limit: 1 }))!
    const c2 = (await driver.createClaim(ref, { ...CLAIM, limit: 1 }))!
    t.same(idsOf(c1.messages), [c1msg])
    t.same(idsOf(c2.messages), [c2msg])
    await postN(driver, p.ref('other'), 1)
    const foreign = (await driver.createClaim(p.ref('other'), CLAIM))!

    await t.resolves(driver.deleteMessage(ref, randomUUID()), 'missing message: no-op')
    await t.resolves(driver.deleteMessage(ref, 'not-an-id'), 'malformed id: no-op')
    await t.resolves(driver.deleteMessage(p.ref('missing'), c1msg), 'missing queue: no-op')
    await t.resolves(driver.deleteMessage(ref, randomUUID(), c1.id), 'missing message with a claim id: no-op')

    await t.rejects(worded(driver.deleteMessage(ref, c1msg)), claimed, 'claimed, no claim id → 403')
    await t.rejects(worded(driver.deleteMessage(ref, free1, c1.id)), notClaimed, 'claim id on an unclaimed message → 400')
    await t.rejects(worded(driver.deleteMessage(ref, free1, randomUUID())), notClaimed)
    await t.rejects(worded(driver.deleteMessage(ref, free1, 'garbage')), notClaimed)
    await t.rejects(worded(driver.deleteMessage(ref, c1msg, randomUUID())), claimGone, 'unknown claim → 400')
    await t.rejects(worded(driver.deleteMessage(ref, c1msg, 'garbage')), claimGone, 'malformed claim → 400')
    await t.rejects(worded(driver.deleteMessage(ref, c1msg, foreign.id)), claimGone, "another queue's claim → 400")
    await t.rejects(worded(driver.deleteMessage(ref, c1msg, c2.id)), claimed, 'another active claim → 403')
    t.ok(await driver.getMessage(ref, c1msg), 'nothing was deleted by the failures')
    t.ok(await driver.getMessage(ref, free1))

    await driver.deleteMessage(ref, c1msg, c1.id)
    t.equal(await driver.getMessage(ref, c1msg), null, 'matching claim → deleted')
    await driver.deleteMessage(ref, free2)
    t.equal(await driver.getMessage(ref, free2), null, 'unclaimed, no claim id → deleted')
    t.same(idsOf((await driver.getClaim(ref, c2.id))!.messages), [c2msg], 'other claims untouched')
  })

  t.test('deleteMessage removes the message from its claim', async (t) => {
    const p = project(t, driver)
    const ids = await postN(driver, p.ref(), 3)
    const claim = (await driver.createClaim(p.ref(), CLAIM))!
    await driver.deleteMessage(p.ref(), ids[1], claim.id)
    t.same(idsOf((await driver.getClaim(p.ref(), claim.id))!.messages), [ids[0], ids[2]])
  })

  timed('deleteMessage: expired claims', async (t, clock) => {
    const p = project(t, driver)
    const ref = p.ref()
    const [a, b] = await postN(driver, ref, 2)
    const old = (await driver.createClaim(ref, { ttl: 60, grace: 60, limit: 2 }))!
    clock.advance(61 * SECOND)
    await t.rejects(worded(driver.deleteMessage(ref, a, old.id)), notClaimed, 'claim expired: message no longer claimed')
    const fresh = (await driver.createClaim(ref, { ttl: 60, grace: 60, limit: 1 }))!
    t.same(idsOf(fresh.messages), [a])
    await t.rejects(worded(driver.deleteMessage(ref, a, old.id)), claimGone, 'expired claim id on a re-claimed message')
    await driver.deleteMessage(ref, b)
    t.equal(await driver.getMessage(ref, b), null, 'expired claim: delete without claim id works')
  })

  t.test('deleteMessages: bulk delete, claimed or not', async (t) => {
    const p = project(t, driver)
    const ids = await postN(driver, p.ref(), 5)
    const [foreign] = await postN(driver, p.ref('other'), 1)
    await driver.createClaim(p.ref(), { ...CLAIM, limit: 2 })
    await driver.deleteMessages(p.ref(), [ids[0], ids[2], randomUUID(), 'bad', foreign, ids[2]])
    t.same(idsOf((await driver.listMessages(p.ref(), listOpts())).items), [ids[1], ids[3], ids[4]])
    t.ok(await driver.getMessage(p.ref('other'), foreign), "another queue's message untouched")
    await t.resolves(driver.deleteMessages(p.ref(), []))
    await t.resolves(driver.deleteMessages(p.ref('missing'), ids))
  })

  t.test('deleteMessages: with claim ids, all or nothing', async (t) => {
    const p = project(t, driver)
    const ref = p.ref()
    const [a, b, c, d] = await postN(driver, ref, 4)
    const c1 = (await driver.createClaim(ref, { ...CLAIM, limit: 2 }))!
    const c2 = (await driver.createClaim(ref, { ...CLAIM, limit: 1 }))!
    t.same(idsOf(c2.messages), [c])

    const bulkClaimed = { code: 'message_claimed' }
    await t.rejects(driver.deleteMessages(ref, [a, d], [c1.id]), bulkClaimed, 'an unclaimed message fails the batch')
    await t.rejects(driver.deleteMessages(ref, [a, c], [c1.id]), bulkClaimed, 'a message of an unlisted claim fails the batch')
    await t.rejects(driver.deleteMessages(ref, [a], [randomUUID(), 'bad']), bulkClaimed)
    t.same(idsOf(await driver.getMessages(ref, [a, b, c, d])), [a, b, c, d], 'nothing deleted')

    await driver.deleteMessages(ref, [a, c, randomUUID()], [c1.id, c2.id])
    t.same(idsOf(await driver.getMessages(ref, [a, b, c, d])), [b, d])
    await driver.deleteMessages(ref, [b], [c1.id, 'bad'])
    t.same(idsOf(await driver.getMessages(ref, [a, b, c, d])), [d])
    await t.resolves(driver.deleteMessages(ref, [randomUUID()], [c1.id]), 'only existing messages are checked')
  })

  // A claim's own list of messages outlives what it holds: the claim runs out and its messages
  // are claimed again, or it is released. Neither lets a bulk delete through on that claim's id.
  timed('deleteMessages: with the ids of claims that ran out or were released', async (t, clock) => {
    const p = project(t, driver)
    const ref = p.ref()
    const [a, b, c] = await postN(driver, ref, 3)
    const old = (await driver.createClaim(ref, { ttl: 60, grace: 60, limit: 2 }))!
    t.same(idsOf(old.messages), [a, b])
    clock.advance(61 * SECOND)
    const bulkClaimed = { code: 'message_claimed' }
    await t.rejects(driver.deleteMessages(ref, [a], [old.id]), bulkClaimed, 'claim ran out: its message is not held by it')
    const again = (await driver.createClaim(ref, { ttl: 60, grace: 60, limit: 1 }))!
    t.same(idsOf(again.messages), [a])
    await t.rejects(driver.deleteMessages(ref, [a], [old.id]), bulkClaimed, 're-claimed: the old claim id does not hold it')
    await t.rejects(driver.deleteMessages(ref, [a, b], [old.id, again.id]), bulkClaimed, 'b is held by no listed claim')
    t.same(idsOf(await driver.getMessages(ref, [a, b, c])), [a, b, c], 'nothing deleted')

    const held = (await driver.createClaim(ref, { ttl: 60, grace: 60, limit: 2 }))!
    t.same(idsOf(held.messages), [b, c])
    await driver.releaseClaim(ref, held.id)
    await t.rejects(driver.deleteMessages(ref, [b], [held.id]), bulkClaimed, 'released: its messages are not held')
    // Many claim ids in one request (the Redis driver then checks each message's own record).
    const many = [...Array.from({ length: 20 }, () => randomUUID()), old.id, held.id]
    await t.rejects(driver.deleteMessages(ref, [a], many), bulkClaimed, 'many claim ids, none holding it')
    await driver.deleteMessages(ref, [a], [...many, again.id])
    t.same(idsOf(await driver.getMessages(ref, [a, b, c])), [b, c], 'the live claim in the list deletes its message')
    const last = (await driver.createClaim(ref, { ttl: 60, grace: 60, limit: 1 }))!
    t.same(idsOf(last.messages), [b])
    await driver.deleteMessages(ref, [b], [old.id, last.id])
    t.same(idsOf(await driver.getMessages(ref, [a, b, c])), [c], 'a few claim ids, the live one among them')
  })

  // Redis coalesces the deletes made on one queue in one turn into one script call: each must
  // still answer as if it had run alone, in call order.
  t.test('deletes made together answer each as if alone, in call order', async (t) => {
    const p = project(t, driver)
    const ref = p.ref()
    const [a, b, c, d, e, f] = await postN(driver, ref, 6)
    const c1 = (await driver.createClaim(ref, { ...CLAIM, limit: 2 }))!
    const c2 = (await driver.createClaim(ref, { ...CLAIM, limit: 1 }))!
    t.same([idsOf(c1.messages), idsOf(c2.messages)], [[a, b], [c]])
    const bulkClaimed = { code: 'message_claimed' }
    const outcomes = await Promise.allSettled([
      driver.deleteMessages(ref, [a, d], [c1.id]),
      worded(driver.deleteMessage(ref, a)),
      driver.deleteMessage(ref, a, c1.id),
      driver.deleteMessages(ref, [a, b], [c1.id]),
      worded(driver.deleteMessage(ref, c, c1.id)),
      worded(driver.deleteMessage(ref, d, c1.id)),
      driver.deleteMessages(ref, [d, e]),
      driver.deleteMessage(ref, d),
      driver.deleteMessages(ref, [c, f], [c2.id]),
      worded(driver.deleteMessage(ref, c, randomUUID())),
      driver.deleteMessages(p.ref('missing'), [c], [c2.id]),
    ])
    const expected = [bulkClaimed, claimed, 'ok', 'ok', claimed, notClaimed, 'ok', 'ok', bulkClaimed, claimGone, 'ok']
    outcomes.forEach((o, n) => {
      const want = expected[n]
      if (want === 'ok') t.equal(o.status, 'fulfilled', `request ${n + 1} succeeds`)
      else t.match(o.status === 'rejected' ? o.reason : 'fulfilled', want, `request ${n + 1} fails as alone`)
    })
    t.same(idsOf(await driver.getMessages(ref, [a, b, c, d, e, f])), [c, f], 'exactly the successful requests deleted')
    t.same(idsOf((await driver.getClaim(ref, c2.id))!.messages), [c], 'the failed requests changed nothing')
  })
}

function definePopTests(t: TapTest, driver: DataDriver): void {
  t.test('popMessages', async (t) => {
    const p = project(t, driver)
    const ref = p.ref()
    t.same(await driver.popMessages(p.ref('missing'), 5), [], 'missing queue')
    await driver.createQueue(ref, { _default_message_delay: 30 })
    const [m0] = await driver.postMessages(ref, [{ body: bodyOf(0), delay: 0 }], postOpts())
    const [m1] = await driver.postMessages(ref, [{ body: bodyOf(1), delay: 60 }], postOpts())
    const rest = await postN(driver, ref, 3, { delay: 0, ttl: 600 })
    const claim = (await driver.createClaim(ref, { ...CLAIM, limit: 1 }))!
    t.same(idsOf(claim.messages), [m0])

    const popped = await driver.popMessages(ref, 2)
    t.same(idsOf(popped), rest.slice(0, 2), 'oldest visible unclaimed first; claimed and delayed skipped')
    t.same(popped.map((m) => m.body), [bodyOf(0), bodyOf(1)])
    for (const m of popped) {
      t.ok(isId(m.claimId), 'carries a claim id')
      t.equal(m.claimCount, 1)
      t.equal(m.ttl, 600)
      t.ok(m.age >= 0)
    }
    t.same(await driver.getMessages(ref, idsOf(popped)), [], 'popped messages are deleted')
    t.ok(await driver.getMessage(ref, m0), 'claimed message kept')
    t.ok(await driver.getMessage(ref, m1), 'delayed message kept')

    await driver.releaseClaim(ref, claim.id)
    const second = await driver.popMessages(ref, 10)
    t.same(idsOf(second), [m0, rest[2]])
    t.equal(second[0].claimCount, 2, 'claim count includes earlier claims')
    t.same(await driver.popMessages(ref, 10), [], 'nothing left to pop')
  })
}

// --- claims --------------------------------------------------------------------------------

function defineClaimTests(t: TapTest, driver: DataDriver, timed: Timed): void {
  t.test('createClaim / getClaim basics', async (t) => {
    const p = project(t, driver)
    const ref = p.ref()
    t.equal(await driver.createClaim(p.ref('missing'), CLAIM), null, 'missing queue')
    await driver.createQueue(ref, {})
    t.equal(await driver.createClaim(ref, CLAIM), null, 'empty queue')
    const ids = await postN(driver, ref, 5)

    const c1 = (await driver.createClaim(ref, { ttl: 120, grace: 60, limit: 3 }))!
    t.ok(isId(c1.id))
    t.equal(c1.ttl, 120)
    t.equal(c1.age, 0)
    t.same(idsOf(c1.messages), ids.slice(0, 3), 'oldest first, up to limit')
    t.ok(c1.messages.every((m) => m.claimId === c1.id && m.claimCount === 1))
    t.same(c1.messages.map((m) => m.body), [0, 1, 2].map(bodyOf))

    const got = (await driver.getClaim(ref, c1.id))!
    t.equal(got.id, c1.id)
    t.equal(got.ttl, 120)
    t.ok(got.age >= 0 && got.age <= 5)
    t.same(idsOf(got.messages), ids.slice(0, 3))
    t.ok(got.messages.every((m) => m.claimId === c1.id))

    const c2 = (await driver.createClaim(ref, { ttl: 120, grace: 60, limit: 3 }))!
    t.same(idsOf(c2.messages), ids.slice(3), 'best effort: fewer than limit')
    t.not(c2.id, c1.id)
    t.equal(await driver.createClaim(ref, CLAIM), null, 'nothing claimable')

    t.equal(await driver.getClaim(ref, randomUUID()), null)
    t.equal(await driver.getClaim(ref, 'not-an-id'), null)
    t.equal(await driver.getClaim(p.ref('other'), c1.id), null, "another queue can't see it")
  })

  t.test('createClaim: echo does not apply', async (t) => {
    const p = project(t, driver)
    const ids = await postN(driver, p.ref(), 2, {}, { clientId: CLIENT_A })
    t.same(idsOf((await driver.createClaim(p.ref(), CLAIM))!.messages), ids)
  })

  t.test('createClaim: TTL extension with grace', async (t) => {
    const p = project(t, driver)
    const [short, long] = await driver.postMessages(p.ref(), [{ body: '1', ttl: 60 }, { body: '2', ttl: 3600 }], postOpts())
    const claim = (await driver.createClaim(p.ref(), { ttl: 120, grace: 30, limit: 2 }))!
    t.same(
      claim.messages.map((m) => m.ttl),
      [150, 3600],
      'a message expiring before the claim gets ttl + grace; others keep theirs',
    )
    t.equal((await driver.getMessage(p.ref(), short))?.ttl, 150)
    t.equal((await driver.getMessage(p.ref(), long))?.ttl, 3600)
  })

  timed('createClaim: extended messages outlive their TTL, then expire', async (t, clock) => {
    const p = project(t, driver)
    const [id] = await driver.postMessages(p.ref(), [{ body: '1', ttl: 60 }], postOpts())
    await driver.createClaim(p.ref(), { ttl: 120, grace: 30, limit: 1 })
    clock.advance(100 * SECOND)
    t.ok(await driver.getMessage(p.ref(), id), 'alive past its original TTL')
    clock.advance(51 * SECOND)
    t.equal(await driver.getMessage(p.ref(), id), null, 'gone after ttl + grace')
  })

  timed('claims expire; messages become claimable again', async (t, clock) => {
    const p = project(t, driver)
    const ids = await postN(driver, p.ref(), 2)
    const claim = (await driver.createClaim(p.ref(), { ttl: 60, grace: 60, limit: 5 }))!
    clock.advance(30 * SECOND)
    t.equal((await driver.getClaim(p.ref(), claim.id))?.age, 30)
    t.equal((await driver.stats(p.ref())).claimed, 2)
    clock.advance(31 * SECOND)
    t.equal(await driver.getClaim(p.ref(), claim.id), null, 'expired claim is gone')
    t.notOk((await driver.getMessage(p.ref(), ids[0]))?.claimId, 'expired claims are not reported')
    t.equal((await driver.stats(p.ref())).claimed, 0)
    t.same(idsOf((await driver.listMessages(p.ref(), listOpts({ includeClaimed: false }))).items), ids)
    const again = (await driver.createClaim(p.ref(), CLAIM))!
    t.same(idsOf(again.messages), ids)
    t.same(again.messages.map((m) => m.claimCount), [2, 2])
    await t.rejects(driver.renewClaim(p.ref(), claim.id, { ttl: 60, grace: 60 }), { code: 'not_found' }, 'renewing an expired claim')
  })

  timed('renewClaim resets the claim and extends messages', async (t, clock) => {
    const p = project(t, driver)
    const [id] = await driver.postMessages(p.ref(), [{ body: '1', ttl: 100 }], postOpts())
    const claim = (await driver.createClaim(p.ref(), { ttl: 60, grace: 60, limit: 1 }))!
    t.equal(claim.messages[0].ttl, 100, 'not extended: expires after the claim')
    clock.advance(30 * SECOND)
    await driver.renewClaim(p.ref(), claim.id, { ttl: 90, grace: 20 })
    const renewed = (await driver.getClaim(p.ref(), claim.id))!
    t.equal(renewed.age, 0, 'age counts from the renewal')
    t.equal(renewed.ttl, 90)
    t.equal(renewed.messages[0].ttl, 110, 'message would expire before the claim: ttl + grace')
    clock.advance(89 * SECOND)
    t.ok(await driver.getClaim(p.ref(), claim.id), 'claim lives now + ttl from the renewal')
    t.equal((await driver.getMessage(p.ref(), id))?.claimId, claim.id)
    clock.advance(2 * SECOND)
    t.equal(await driver.getClaim(p.ref(), claim.id), null)
    t.ok(await driver.getMessage(p.ref(), id), 'message lives until renewal + ttl + grace')
    clock.advance(20 * SECOND)
    t.equal(await driver.getMessage(p.ref(), id), null)
  })

  t.test('renewClaim: not found cases', async (t) => {
    const p = project(t, driver)
    await postN(driver, p.ref(), 1)
    const claim = (await driver.createClaim(p.ref(), CLAIM))!
    const opts = { ttl: 60, grace: 60 }
    await t.rejects(driver.renewClaim(p.ref(), randomUUID(), opts), { code: 'not_found' })
    await t.rejects(driver.renewClaim(p.ref(), 'not-an-id', opts), { code: 'not_found' })
    await t.rejects(driver.renewClaim(p.ref('other'), claim.id, opts), { code: 'not_found' })
    await t.rejects(driver.renewClaim(p.ref('missing'), claim.id, opts), { code: 'not_found' })
    await t.resolves(driver.renewClaim(p.ref(), claim.id, opts))
  })

  t.test('releaseClaim', async (t) => {
    const p = project(t, driver)
    const ids = await postN(driver, p.ref(), 3)
    const claim = (await driver.createClaim(p.ref(), { ...CLAIM, limit: 2 }))!
    await t.resolves(driver.releaseClaim(p.ref(), randomUUID()), 'missing claim: no-op')
    await t.resolves(driver.releaseClaim(p.ref(), 'not-an-id'), 'malformed: no-op')
    await driver.releaseClaim(p.ref('other'), claim.id)
    t.ok(await driver.getClaim(p.ref(), claim.id), "another queue can't release it")

    await driver.releaseClaim(p.ref(), claim.id)
    t.equal(await driver.getClaim(p.ref(), claim.id), null)
    t.notOk((await driver.getMessage(p.ref(), ids[0]))?.claimId)
    const again = (await driver.createClaim(p.ref(), CLAIM))!
    t.same(idsOf(again.messages), ids, 'released messages are claimable at once, FIFO kept')
    t.same(again.messages.map((m) => m.claimCount), [2, 2, 1], 'claim counts kept')
    await t.resolves(driver.releaseClaim(p.ref(), claim.id), 'releasing twice is a no-op')
    t.ok(await driver.getClaim(p.ref(), again.id), 'and does not touch the new claim')
  })

  t.test('concurrent claims never share a message', async (t) => {
    const p = project(t, driver)
    const ids = await postN(driver, p.ref(), 50)
    const claims = await Promise.all(Array.from({ length: 20 }, () => driver.createClaim(p.ref(), { ...CLAIM, limit: 5 })))
    const got = claims.flatMap((c) => (c === null ? [] : idsOf(c.messages)))
    t.equal(new Set(got).size, got.length, 'no message in two claims')
    t.same([...got].sort(), [...ids].sort(), 'every message claimed once')
    const claimIds = claims.filter((c) => c !== null).map((c) => c!.id)
    t.equal(new Set(claimIds).size, claimIds.length, 'claim ids are distinct')
    t.equal(claimIds.length, 10)
  })

  timed('claims skip delayed and expired messages', async (t, clock) => {
    const p = project(t, driver)
    await driver.createQueue(p.ref(), { _default_message_delay: 30 })
    const [late, short, plain] = await driver.postMessages(
      p.ref(),
      [{ body: '1', delay: 60 }, { body: '2', delay: 0, ttl: 60 }, { body: '3', delay: 0 }],
      postOpts(),
    )
    const visible = await driver.listMessages(p.ref(), listOpts({ includeDelayed: false }))
    t.same(idsOf(visible.items), [short, plain])
    clock.advance(61 * SECOND)
    const second = (await driver.createClaim(p.ref(), CLAIM))!
    t.same(idsOf(second.messages), [late, plain], 'expired message not claimed; delayed one now is, in FIFO order')
  })
}

function defineDeadLetterTests(t: TapTest, driver: DataDriver, routes: boolean): void {
  const claimAndRelease = async (ref: QueueRef, limit = 10) => {
    const c = await driver.createClaim(ref, { ...CLAIM, limit })
    if (c !== null) await driver.releaseClaim(ref, c.id)
    return c
  }

  t.test('dead-letter queue: move after _max_claim_count claims', async (t) => {
    const p = project(t, driver)
    const src = p.ref('src')
    await driver.createQueue(src, { _max_claim_count: 2, _dead_letter_queue: 'dlq', _dead_letter_queue_messages_ttl: 7200 })
    const [id] = await driver.postMessages(src, [{ body: '{"poison":true}', ttl: 3600 }], postOpts())
    t.equal((await claimAndRelease(src))?.messages[0].claimCount, 1)
    t.equal((await claimAndRelease(src))?.messages[0].claimCount, 2)
    t.equal(await driver.createClaim(src, CLAIM), null, 'the next claim moves it instead of claiming it')
    t.equal((await driver.stats(src)).total, 0, 'gone from the source')
    t.equal(await driver.getMessage(src, id), null)

    const dlq = await driver.listMessages(p.ref('dlq'), listOpts())
    t.equal(dlq.items.length, 1, 'in the dead-letter queue of the same project')
    const moved = dlq.items[0]
    t.equal(moved.id, id, 'same id')
    t.equal(moved.body, '{"poison":true}', 'same body')
    t.equal(moved.ttl, 7200, 'TTL from _dead_letter_queue_messages_ttl')
    t.notOk(moved.claimId, 'unclaimed')
    t.ok(await driver.createClaim(p.ref('dlq'), CLAIM), 'claimable in the DLQ')
  })

  t.test('dead-letter queue: TTL kept without _dead_letter_queue_messages_ttl; mixed batches', async (t) => {
    const p = project(t, driver)
    const src = p.ref('src')
    await driver.createQueue(src, { _max_claim_count: 1, _dead_letter_queue: 'dead' })
    const [a, b] = await driver.postMessages(src, [{ body: '"a"', ttl: 900 }, { body: '"b"' }], postOpts())
    await claimAndRelease(src, 1)
    const claim = (await driver.createClaim(src, CLAIM))!
    t.same(idsOf(claim.messages), [b], 'moved messages are left out of the claim')
    const dead = await driver.listMessages(p.ref('dead'), listOpts())
    t.same(idsOf(dead.items), [a])
    t.equal(dead.items[0].ttl, 900, 'TTL kept')
  })

  if (!routes) t.test('dead-letter queue: one the caller did not vouch for is reported, not filled; the rest is claimed', async (t) => {
    // ClaimOptions.deadLetter names the DLQ the caller checked is in this store; messages due for
    // any other one stay in the queue and come back in `deadLetter`, for the caller to move.
    const p = project(t, driver)
    const src = p.ref('src')
    await driver.createQueue(src, { _max_claim_count: 1, _dead_letter_queue: 'remote', _dead_letter_queue_messages_ttl: 7200 })
    const [a, b] = await driver.postMessages(src, [{ body: '"a"', ttl: 900 }, { body: '"b"' }], postOpts())
    await claimAndRelease(src, 1)
    const claim = (await driver.createClaim(src, { ...CLAIM, deadLetter: 'local' }))!
    t.same(idsOf(claim.messages), [b], 'the due message is not claimed')
    t.same(claim.deadLetter, { queue: 'remote', ids: [a], ttl: 7200 }, 'and is reported with the DLQ and its TTL')
    t.same(await driver.listQueues(p.name, { limit: 10 }).then((l) => l.items.map((q) => q.name)), ['src'], 'no DLQ created')
    await driver.releaseClaim(src, claim.id)

    // b has now been claimed once too: both are due, and nothing is left to claim.
    const only = await driver.createClaim(src, { ...CLAIM, deadLetter: 'local' })
    t.same(only, { id: '', age: 0, ttl: CLAIM.ttl, messages: [], deadLetter: { queue: 'remote', ids: [a, b], ttl: 7200 } }, 'only due messages: no claim, only the report')
    t.same(idsOf((await driver.listMessages(src, listOpts({ includeClaimed: true }))).items), [a, b], 'both still in the source')
  })

  t.test('a claim of limit 0 claims nothing and moves nothing', async (t) => {
    const p = project(t, driver)
    const src = p.ref('src')
    await driver.createQueue(src, { _max_claim_count: 1, _dead_letter_queue: 'dlq' })
    await postN(driver, src, 2)
    await claimAndRelease(src, 1)
    t.equal(await driver.createClaim(src, { ...CLAIM, limit: 0 }), null)
    t.same((await driver.stats(src)).total, 2, 'the due message is still in the source')
    t.same((await driver.listMessages(p.ref('dlq'), listOpts())).items, [])
  })

  t.test('no dead-lettering without both keys', async (t) => {
    const p = project(t, driver)
    const src = p.ref('src')
    await driver.createQueue(src, { _max_claim_count: 1 })
    await postN(driver, src, 1)
    for (let i = 1; i <= 3; i++) t.equal((await claimAndRelease(src))?.messages[0].claimCount, i)
    await driver.setQueueMetadata(src, { _dead_letter_queue: 'dlq' })
    t.equal((await claimAndRelease(src))?.messages[0].claimCount, 4)
    t.equal((await driver.listQueues(p.name, { limit: 10 })).items.length, 1, 'no DLQ created')
  })
}

function defineStatsTests(t: TapTest, driver: DataDriver, timed: Timed): void {
  t.test('stats: counts, oldest and newest', async (t) => {
    const p = project(t, driver)
    t.same(await driver.stats(p.ref()), { total: 0, claimed: 0, free: 0, delayed: 0 }, 'missing queue: zeros, no oldest/newest')
    await driver.createQueue(p.ref(), { _default_message_delay: 30 })
    const [first] = await postN(driver, p.ref(), 3, { delay: 0 })
    const [last] = await postN(driver, p.ref(), 1, { delay: 60 })
    await driver.createClaim(p.ref(), { ...CLAIM, limit: 2 })
    const s = await driver.stats(p.ref())
    t.match(s, { total: 4, claimed: 2, free: 2 }, 'delayed messages count in total')
    t.equal(s.oldest?.id, first)
    t.equal(s.newest?.id, last)
    t.type(s.oldest?.created, 'number')
    t.type(s.newest?.age, 'number')
    await driver.purge(p.ref())
    const empty = await driver.stats(p.ref())
    t.same(empty, { total: 0, claimed: 0, free: 0, delayed: 0 }, 'empty queue: no oldest/newest')
  })

  timed('stats: ages and expiry', async (t, clock) => {
    const p = project(t, driver)
    const t0 = clock()
    const [old] = await driver.postMessages(p.ref(), [{ body: '1', ttl: 60 }], postOpts())
    clock.advance(10 * SECOND)
    const t1 = clock()
    const [young] = await postN(driver, p.ref(), 1)
    clock.advance(5 * SECOND)
    t.match(await driver.stats(p.ref()), {
      total: 2,
      oldest: { id: old, age: 15, created: t0 },
      newest: { id: young, age: 5, created: t1 },
    })
    clock.advance(50 * SECOND)
    t.match(await driver.stats(p.ref()), { total: 1, free: 1, oldest: { id: young }, newest: { id: young } })
  })
}

// --- tenancy -------------------------------------------------------------------------------

function defineTenancyTests(t: TapTest, driver: DataDriver): void {
  t.test("tenancy: another project can't reach a project's data", async (t) => {
    const a = project(t, driver)
    const b = project(t, driver)
    const refA = a.ref('shared')
    const refB = b.ref('shared')
    await driver.createQueue(refA, { owner: 'a' })
    const ids = await postN(driver, refA, 3)
    const claim = (await driver.createClaim(refA, { ...CLAIM, limit: 1 }))!

    t.equal(await driver.getQueue(refB), null)
    t.same((await driver.listQueues(b.name, { limit: 10, withCount: true })).items, [])
    t.same(await driver.stats(refB), { total: 0, claimed: 0, free: 0, delayed: 0 })
    t.same((await driver.listMessages(refB, listOpts())).items, [])
    t.equal(await driver.getMessage(refB, ids[0]), null)
    t.same(await driver.getMessages(refB, ids), [])
    t.equal(await driver.getClaim(refB, claim.id), null)
    await t.rejects(driver.renewClaim(refB, claim.id, { ttl: 60, grace: 60 }), { code: 'not_found' })
    await t.rejects(driver.setQueueMetadata(refB, { owner: 'b' }), { code: 'not_found' })
    t.equal(await driver.createClaim(refB, CLAIM), null)
    t.same(await driver.popMessages(refB, 10), [])

    await driver.deleteMessage(refB, ids[1])
    await driver.deleteMessage(refB, ids[0], claim.id)
    await driver.deleteMessages(refB, ids)
    await driver.deleteMessages(refB, ids, [claim.id])
    await driver.releaseClaim(refB, claim.id)
    await driver.purge(refB)
    await driver.deleteQueue(refB)

    t.same(await driver.getQueue(refA), { owner: 'a' }, "A's queue intact")
    t.same(idsOf((await driver.listMessages(refA, listOpts())).items), ids, "A's messages intact")
    t.equal((await driver.getClaim(refA, claim.id))?.messages.length, 1, "A's claim still active")
    t.equal((await driver.getMessage(refA, ids[0]))?.claimId, claim.id)

    const [idB] = await driver.postMessages(refB, [{ body: '"b"' }], postOpts())
    t.same(idsOf((await driver.listMessages(refB, listOpts())).items), [idB], 'same queue name, separate queues')
    t.same(idsOf((await driver.listMessages(refA, listOpts())).items), ids)
    t.equal(await driver.getMessage(refA, idB), null)
    t.same((await driver.listQueues(a.name, { limit: 10, withCount: true })).count, 1)
    t.same((await driver.listQueues(b.name, { limit: 10, withCount: true })).count, 1)
  })

  t.test('tenancy: ids are scoped to their queue within a project', async (t) => {
    const p = project(t, driver)
    const ids = await postN(driver, p.ref('q1'), 2)
    await postN(driver, p.ref('q2'), 2)
    const claim = (await driver.createClaim(p.ref('q1'), { ...CLAIM, limit: 1 }))!
    t.equal(await driver.getMessage(p.ref('q2'), ids[0]), null)
    t.equal(await driver.getClaim(p.ref('q2'), claim.id), null)
    await driver.deleteMessage(p.ref('q2'), ids[1])
    await driver.deleteMessages(p.ref('q2'), ids)
    await driver.releaseClaim(p.ref('q2'), claim.id)
    t.same(idsOf(await driver.getMessages(p.ref('q1'), ids)), ids)
    t.ok(await driver.getClaim(p.ref('q1'), claim.id))
    t.same(idsOf((await driver.createClaim(p.ref('q2'), CLAIM))!.messages).length, 2, "q2's own messages only")
  })
}

/** Helpers for driver-specific tests. */
export { postOpts, listOpts, project, CLIENT_A, CLIENT_B }
