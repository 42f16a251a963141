/**
 * The per-worker circuit breaker (proxy/circuit-breaker.ts; docs/ha.md, "Failure isolation"), on a
 * scripted driver: outage failures in a row open it, a queue's own errors do not; an open breaker
 * answers 503 + Retry-After without calling the store; a good check closes it; a stalled store
 * (calls that never answer) fails the waiting calls and opens it; a failed check opens an idle
 * one; the store answering as another server counts a failover. The whole-service behaviour (three
 * real Redis pools, one stopped) is tests/ha/pool-down.test.ts.
 */
import t from 'tap'
import { CircuitBreaker, isOutage, OPEN_DESCRIPTION, STALL_DESCRIPTION, type StoreInfo } from '../../proxy/circuit-breaker.js'
import { MissiveError } from '../../shared/errors.js'
import type { DataDriver } from '../../shared/storage/contract.js'
import { QueueNotFound, StoreUnavailable } from '../../shared/storage/errors.js'
import { defineOperations } from '../../shared/storage/operations.js'

const ref = { project: 'p', queue: 'q' }
const stats = { messages: { free: 0, claimed: 0, total: 0 } }

interface Scripted {
  driver: DataDriver
  calls: () => number
  next: (fn: () => Promise<unknown>) => void
  /** A call that never answers by itself, as one held by a stopped Redis; `abort` fails them. */
  hang: () => Promise<unknown>
  abort: (err: () => MissiveError) => void
}

/** A driver whose every call runs `next()` (swapped by each test), counting calls. */
function scripted(): Scripted {
  let n = 0
  let fn: () => Promise<unknown> = async () => stats
  const held: ((err: unknown) => void)[] = []
  const driver = defineOperations({ kind: 'scripted', close: async () => {} }, () => (() => {
    n++
    return fn()
  }) as never) as DataDriver
  return {
    driver,
    calls: () => n,
    next: (f) => (fn = f),
    hang: () => new Promise((_, reject) => held.push(reject)),
    abort: (err) => held.splice(0).forEach((reject) => reject(err())),
  }
}

const outage = (): MissiveError => new MissiveError('unavailable', 'Service temporarily unavailable: the worker is not reachable.', { retryAfter: 1 })

t.test('what counts as an outage', async (t) => {
  t.ok(isOutage(outage()), 'RPC unreachable / timed out / hung')
  t.ok(isOutage(new StoreUnavailable('unreachable', 'stats')), 'the store unreachable')
  t.notOk(isOutage(new StoreUnavailable('busy', 'postMessages')), 'a busy queue is about one queue')
  t.notOk(isOutage(new StoreUnavailable('interrupted', 'postMessages')), 'an interrupted post is about one queue')
  t.notOk(isOutage(new QueueNotFound(ref)), 'a missing queue')
  t.notOk(isOutage(new Error('bug')), 'a bug')
})

t.test('outages in a row open it; open fails at once; a good check closes it', async (t) => {
  const s = scripted()
  const changes: boolean[] = []
  const b = new CircuitBreaker(s.driver, { failures: 3, stallMs: 0, checkMs: 0, onChange: (open) => changes.push(open) })
  t.teardown(() => b.close())
  t.same(await b.driver.stats(ref), stats, 'closed: calls pass')

  s.next(() => Promise.reject(new QueueNotFound(ref)))
  for (let i = 0; i < 5; i++) await t.rejects(b.driver.stats(ref), { code: 'not_found' })
  t.notOk(b.isOpen, "a queue's own errors never open it")

  s.next(() => Promise.reject(outage()))
  await t.rejects(b.driver.stats(ref), { code: 'unavailable' })
  await t.rejects(b.driver.stats(ref), { code: 'unavailable' })
  t.notOk(b.isOpen, 'two outages: still closed')
  await t.rejects(b.driver.stats(ref), { code: 'unavailable' })
  t.ok(b.isOpen, 'the third in a row opens it')
  t.match(b.reason, /3 calls in a row failed/)

  const before = s.calls()
  const refused = (await b.driver.postMessages(ref, [{ body: '1', ttl: 60 }], { clientId: 'c', defaultTtl: 60, postBytes: 0, queuePolicy: false }).catch((e: unknown) => e)) as MissiveError
  t.equal(s.calls(), before, 'open: the store is not called at all')
  t.equal(refused.code, 'unavailable')
  t.equal(refused.description, OPEN_DESCRIPTION)
  t.ok((refused.retryAfter ?? 0) >= 1, 'with Retry-After')

  s.next(() => Promise.reject(new MissiveError('unavailable', 'the store refuses: appendfsync is "everysec"')))
  await b.check()
  t.ok(b.isOpen, 'a failed check keeps it open')
  t.match(b.reason, /check failed: the store refuses/, 'and its reason is the latest failure')
  t.equal(b.trips, 1, 'still one trip')
  s.next(async () => undefined)
  await b.check()
  t.notOk(b.isOpen, 'a good check closes it')
  s.next(async () => stats)
  t.same(await b.driver.stats(ref), stats, 'calls pass again')
  t.same(changes, [true, false], 'told when it opened and closed')
  t.equal(b.trips, 1)
})

t.test('a success between outages starts the count again', async (t) => {
  const s = scripted()
  const b = new CircuitBreaker(s.driver, { failures: 2, stallMs: 0, checkMs: 0 })
  t.teardown(() => b.close())
  for (let i = 0; i < 4; i++) {
    s.next(() => Promise.reject(outage()))
    await t.rejects(b.driver.stats(ref))
    s.next(async () => stats)
    await b.driver.stats(ref)
  }
  t.notOk(b.isOpen)
})

t.test('a stalled store: the waiting calls fail with 503 and the breaker opens', async (t) => {
  const s = scripted()
  // Never answers, as a stopped Redis behind a very long command timeout.
  s.next(s.hang)
  const b = new CircuitBreaker(s.driver, { failures: 3, stallMs: 100, checkMs: 0, abort: s.abort })
  t.teardown(() => b.close())
  // The breaker's timer does not keep a process alive (unref); this test's promises alone would not either.
  const alive = setInterval(() => {}, 1000)
  t.teardown(() => clearInterval(alive))
  const waiting = ([b.driver.stats(ref), b.driver.getQueue(ref), b.driver.ping()] as Promise<unknown>[]).map((p) =>
    p.then(
      () => new MissiveError('internal', 'answered'),
      (e: unknown) => e as MissiveError,
    ),
  )
  const errors = await Promise.all(waiting)
  t.same(
    errors.map((e) => [e.code, e.description, (e.retryAfter ?? 0) >= 1]),
    Array(3).fill(['unavailable', STALL_DESCRIPTION, true]),
    'each waiting call: 503 + Retry-After, saying the outcome is unknown',
  )
  t.ok(b.isOpen, 'and the breaker is open')
  t.match(b.reason, /nothing answered for 100 ms/)
})

t.test('a silent worker is not a stalled store: the stall counts only while the worker is heard from', async (t) => {
  const s = scripted()
  s.next(s.hang)
  let heard = performance.now()
  const b = new CircuitBreaker(s.driver, { stallMs: 50, checkMs: 0, lastHeard: () => heard, abort: s.abort })
  t.teardown(() => b.close())
  const alive = setInterval(() => {}, 1000)
  t.teardown(() => clearInterval(alive))
  const waiting = b.driver.stats(ref).catch((e: unknown) => e as MissiveError)
  const { waitFor } = await import('../helpers/index.js')
  // Several stall windows pass with the worker silent: its calls are left to the RPC timeout.
  const t0 = performance.now()
  await waitFor(() => performance.now() - t0 > 300, { what: 'six stall windows' })
  t.notOk(b.isOpen, 'a silent worker: not tripped')
  heard = performance.now()
  t.match(await waiting, { code: 'unavailable', description: STALL_DESCRIPTION }, 'the worker answers a heartbeat: its store is stalled')
  t.ok(b.isOpen)
})

t.test('an idle pool: a failed check opens it; checks carry the store facts and see a failover', async (t) => {
  const s = scripted()
  let info: () => Promise<StoreInfo | null> = async () => ({ role: 'master', server: 'run-a', replicas: 2, lagSeconds: 0 })
  const failovers: string[] = []
  const b = new CircuitBreaker(s.driver, { stallMs: 0, checkMs: 0, info: () => info(), onFailover: (from, to) => failovers.push(`${from}->${to}`) })
  t.teardown(() => b.close())
  await b.check()
  t.same(b.info, { role: 'master', server: 'run-a', replicas: 2, lagSeconds: 0 })
  t.equal(b.failovers, 0)
  t.equal(b.lastFailover, null)

  info = () => Promise.reject(outage())
  await b.check()
  t.ok(b.isOpen, 'no call at all, yet the failed check opens it')
  await t.rejects(b.driver.stats(ref), { code: 'unavailable', description: OPEN_DESCRIPTION })

  info = async () => ({ role: 'master', server: 'run-b', replicas: 1, lagSeconds: 1 })
  await b.check()
  t.notOk(b.isOpen, 'the new master answers: closed')
  t.equal(b.failovers, 1, 'another server: one failover')
  t.type(b.lastFailover, 'number')
  t.same(failovers, ['run-a->run-b'])
  t.equal(b.info?.replicas, 1)
})

t.test('the timer checks on its own and closes the breaker once the store answers', async (t) => {
  const s = scripted()
  let up = false
  const b = new CircuitBreaker(s.driver, { stallMs: 0, checkMs: 20, info: async () => (up ? { role: 'master' } : Promise.reject(outage())) })
  t.teardown(() => b.close())
  const { waitFor } = await import('../helpers/index.js')
  await waitFor(() => b.isOpen, { what: 'a failing check to open it' })
  up = true
  await waitFor(() => !b.isOpen, { what: 'a good check to close it' })
  t.same(b.info, { role: 'master' })
})

t.test('the failover counter follows the changes the driver saw, not only two samples (issue 14)', async (t) => {
  const s = scripted()
  // The worker's driver notes the server at every reconnection: between two checks it saw a
  // failover and a failback (or two restarts), yet both checks meet the same run_id.
  let info: StoreInfo = { role: 'master', server: 'run-a', boot: 'w1', changes: 0 }
  const counted: number[] = []
  const b = new CircuitBreaker(s.driver, { stallMs: 0, checkMs: 0, info: async () => info, onFailover: (_f, _t, n) => counted.push(n) })
  t.teardown(() => b.close())
  await b.check()
  info = { role: 'master', server: 'run-a', boot: 'w1', changes: 2 }
  await b.check()
  t.equal(b.failovers, 2, 'both changes of server counted, though the sampled server is the same')
  t.same(counted, [2])
  await b.check()
  t.equal(b.failovers, 2, 'nothing new: nothing counted')
  // A restarted worker (a new driver, its count from 0) on another server: one failover.
  info = { role: 'master', server: 'run-b', boot: 'w2', changes: 0 }
  await b.check()
  t.equal(b.failovers, 3, 'a new driver on another server: one more')
  info = { role: 'master', server: 'run-b', boot: 'w2', changes: 0 }
  await b.check()
  t.equal(b.failovers, 3)
})

t.test('a failover before the first check completed is counted (issue 14)', async (t) => {
  const s = scripted()
  const b = new CircuitBreaker(s.driver, { stallMs: 0, checkMs: 0, info: async () => ({ role: 'master', server: 'run-b', boot: 'w1', changes: 1, lastChange: Date.now() }) })
  t.teardown(() => b.close())
  await b.check()
  t.equal(b.failovers, 1, 'the driver saw the server change before this breaker had any facts')
  // Changes older than the breaker (a proxy restarted long after them) are not its own.
  const late = new CircuitBreaker(s.driver, { stallMs: 0, checkMs: 0, info: async () => ({ role: 'master', server: 'run-b', boot: 'w1', changes: 3, lastChange: Date.now() - 60_000 }) })
  t.teardown(() => late.close())
  await late.check()
  t.equal(late.failovers, 0)
})
