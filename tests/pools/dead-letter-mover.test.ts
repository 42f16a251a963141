/**
 * The proxy's cross-pool dead-letter mover (proxy/dead-letter.ts), every branch, against real
 * SQLite stores and a router stand-in whose catalog answers are set per test: the DLQ on the
 * source's pool (the claim moves it), a source with no placement (the default pool), a catalog
 * that cannot be read, the move itself (TTL from the DLQ's setting or the message's own), messages
 * claimed since, a failed copy retried by the next report, and the bound on moves at once.
 * The whole path through the API is in tests/security/dead-letter-pools.test.ts.
 */
import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { DEAD_LETTER_CLIENT_ID, DeadLetterMover, type DeadLetterRouting } from '../../proxy/dead-letter.js'
import type { Logger } from '../../shared/log.js'
import type { DataDriver, DeadLetterDue, QueueRef } from '../../shared/storage/contract.js'
import { SqliteDriver } from '../../worker/storage/sqlite/driver.js'
import { listOpts, postOpts } from '../contract/suite.js'
import { waitFor } from '../helpers/index.js'

interface Stage {
  mover: DeadLetterMover
  source: SqliteDriver
  target: SqliteDriver
  warnings: string[]
  log: Logger
  placed: { ref: QueueRef; from: string }[]
  local: string[]
  /** Each field: what the router answers next. */
  catalog: { placement: string | null | Error; dlqPool: string; target: () => Promise<DataDriver> }
}

function stage(t: Test): Stage {
  const open = () => {
    const d = new SqliteDriver({ path: ':memory:', durability: 'fast', gcIntervalMs: 0 })
    t.teardown(() => d.close())
    return d
  }
  const source = open()
  const target = open()
  const warnings: string[] = []
  const log = { warn: (_: unknown, msg: string) => void warnings.push(msg) } as unknown as Logger
  const s: Stage = {
    source,
    target,
    warnings,
    log,
    placed: [],
    local: [],
    catalog: { placement: 'src-pool', dlqPool: 'dlq-pool', target: async () => target },
    mover: undefined as unknown as DeadLetterMover,
  }
  const router = {
    defaultPool: 'default-pool',
    async placementOf(_ref: QueueRef) {
      if (s.catalog.placement instanceof Error) throw s.catalog.placement
      return s.catalog.placement
    },
    async placeUnlessPlaced(ref: QueueRef, from: string) {
      s.placed.push({ ref, from })
      return s.catalog.dlqPool
    },
    noteLocalDeadLetter(ref: QueueRef, dlq: string) {
      s.local.push(`${ref.queue}->${dlq}`)
    },
    driverOf: (_ref: QueueRef) => s.catalog.target(),
  }
  s.mover = new DeadLetterMover(router satisfies DeadLetterRouting, log)
  return s
}

const ref = (queue = 'jobs'): QueueRef => ({ project: 'p', queue })
const dlqRef: QueueRef = { project: 'p', queue: 'dlq' }

/** Posts `bodies` to the source queue; returns a report of all of them as due. */
async function due(s: Stage, bodies: { body: string; ttl: number }[], ttl?: number, queue = 'jobs'): Promise<DeadLetterDue> {
  const ids = await s.source.postMessages(ref(queue), bodies, postOpts())
  return { queue: 'dlq', ids, ...(ttl !== undefined && { ttl }) }
}

const inDlq = async (s: Stage) => (await s.target.listMessages(dlqRef, listOpts({ echo: true, clientId: randomUUID() }))).items

t.test('DLQ on the source pool: the caller claims again with it, nothing is copied', async (t) => {
  const s = stage(t)
  s.catalog.dlqPool = 'src-pool'
  const d = await due(s, [{ body: '"a"', ttl: 600 }])
  t.equal(await s.mover.settle(ref(), s.source, d), true)
  t.same(s.local, ['jobs->dlq'], 'the router remembers the DLQ is local')
  t.same(s.placed, [{ ref: dlqRef, from: 'src-pool' }], 'the DLQ is placed on the source pool unless placed')
  t.equal(s.mover.moved, 0)
  t.equal((await s.source.stats(ref())).total, 1, 'still in the source, for the claim to move')
})

t.test('a source without a placement lives on the default pool', async (t) => {
  const s = stage(t)
  s.catalog.placement = null
  s.catalog.dlqPool = 'default-pool'
  const d = await due(s, [{ body: '"a"', ttl: 600 }])
  t.equal(await s.mover.settle(ref(), s.source, d), true)
  t.same(s.placed, [{ ref: dlqRef, from: 'default-pool' }])
})

t.test('a catalog that cannot be read: nothing moves, a warning, the next claim retries', async (t) => {
  const s = stage(t)
  s.catalog.placement = new Error('catalog down')
  const d = await due(s, [{ body: '"a"', ttl: 600 }])
  t.equal(await s.mover.settle(ref(), s.source, d), false)
  t.same(s.warnings, ['dead-letter placement could not be read'])
  t.same(s.placed, [])
  t.equal(s.mover.moved + s.mover.failures, 0, 'no move started')
  t.equal((await s.source.stats(ref())).total, 1)
})

t.test('another pool: copied with the DLQ TTL, then deleted from the source', async (t) => {
  const s = stage(t)
  const d = await due(s, [{ body: '"a"', ttl: 600 }, { body: '"b"', ttl: 900 }], 7200)
  t.equal(await s.mover.settle(ref(), s.source, d), false, 'the claim does not wait for the move')
  await waitFor(() => s.mover.moved === 2, { what: 'the move' })
  const moved = await inDlq(s)
  t.same(moved.map((m) => [m.body, m.ttl]), [['"a"', 7200], ['"b"', 7200]], '_dead_letter_queue_messages_ttl applies')
  t.equal((await s.source.stats(ref())).total, 0, 'gone from the source')
  t.same(s.warnings, [])
  // missive_messages_dead_lettered_total counts them under the pool they left.
  t.same([...s.mover.movedFrom].map(([pool, c]) => [pool, c.n]), [['src-pool', 2]], 'counted for the source pool')
})

t.test("another pool, no DLQ TTL: each message keeps its own", async (t) => {
  const s = stage(t)
  const d = await due(s, [{ body: '"a"', ttl: 600 }, { body: '"b"', ttl: 900 }])
  await s.mover.settle(ref(), s.source, d)
  await waitFor(() => s.mover.moved === 2, { what: 'the move' })
  t.same((await inDlq(s)).map((m) => [m.body, m.ttl]), [['"a"', 600], ['"b"', 900]])
  const raw = await s.target.listMessages(dlqRef, listOpts({ echo: false, clientId: DEAD_LETTER_CLIENT_ID }))
  t.same(raw.items, [], 'posted under the dead-letter Client-ID (hidden from it without echo)')
})

t.test('messages claimed since the report are not moved', async (t) => {
  const s = stage(t)
  const d = await due(s, [{ body: '"a"', ttl: 600 }])
  const claim = (await s.source.createClaim(ref(), { ttl: 60, grace: 60, limit: 10 }))!
  t.equal(claim.messages.length, 1)
  let targetAsked = 0
  s.catalog.target = async () => {
    targetAsked++
    return s.target
  }
  await s.mover.settle(ref(), s.source, d)
  await waitFor(() => targetAsked === 1, { what: 'the move to run' })
  // The move resolves with 0 moved; a second report starts a new one (the first is over).
  await waitFor(async () => (await s.mover.settle(ref(), s.source, d), targetAsked === 2), { what: 'a second move' })
  t.equal(s.mover.moved, 0)
  t.same(await inDlq(s), [], 'nothing copied')
  t.equal((await s.source.stats(ref())).total, 1, 'the claimed message stays')
})

t.test('a failed copy: counted, logged, the messages stay; the next report moves them', async (t) => {
  const s = stage(t)
  const d = await due(s, [{ body: '"a"', ttl: 600 }])
  s.catalog.target = async () => {
    throw new Error('pool down')
  }
  await s.mover.settle(ref(), s.source, d)
  await waitFor(() => s.mover.failures === 1, { what: 'the failure' })
  t.same(s.warnings, ['dead-letter move to another pool failed; retried on the next claim'])
  t.equal((await s.source.stats(ref())).total, 1, 'still in the source')
  s.catalog.target = async () => s.target
  await s.mover.settle(ref(), s.source, d)
  await waitFor(() => s.mover.moved === 1, { what: 'the retry' })
  t.equal((await inDlq(s)).length, 1, 'landed once')
  t.equal((await s.source.stats(ref())).total, 0)
})

t.test('one move per source queue at a time, and at most 64 at once', async (t) => {
  const s = stage(t)
  let release!: () => void
  const gate = new Promise<void>((r) => {
    release = r
  })
  let asked = 0
  s.catalog.target = async () => {
    asked++
    await gate
    return s.target
  }
  const first = await due(s, [{ body: '"0"', ttl: 600 }], undefined, 'q0')
  await s.mover.settle(ref('q0'), s.source, first)
  await s.mover.settle(ref('q0'), s.source, first)
  t.equal(asked, 1, 'a second report for a queue being moved starts nothing')
  for (let i = 1; i < 64; i++) await s.mover.settle(ref(`q${i}`), s.source, await due(s, [{ body: `"${i}"`, ttl: 600 }], undefined, `q${i}`))
  t.equal(asked, 64, '64 moves under way')
  await s.mover.settle(ref('q64'), s.source, await due(s, [{ body: '"64"', ttl: 600 }], undefined, 'q64'))
  t.equal(asked, 64, 'the 65th waits for a later claim')
  release()
  await waitFor(() => s.mover.moved === 64, { what: 'the 64 moves' })
  t.equal((await s.target.stats(dlqRef)).total, 64, 'each once')
  t.equal((await s.source.stats(ref('q64'))).total, 1, 'the 65th queue still holds its message')
  await s.mover.settle(ref('q64'), s.source, { queue: 'dlq', ids: (await s.source.listMessages(ref('q64'), listOpts())).items.map((m) => m.id) })
  await waitFor(() => s.mover.moved === 65, { what: 'the 65th, reported again' })
})
