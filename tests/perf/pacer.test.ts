/**
 * perf/lib/pacer.ts: the bench runs Zaqar's scenarios in step with a Missive store's. Two fake
 * suites log what they run; the order of the log is the contract, and neither may hang when the
 * other stops early.
 */
import t from 'tap'
import { Pacer } from '../../perf/lib/pacer.js'
import { within } from '../helpers/index.js'

const IDS = ['post1', 'post10', 'consume-bulk', 'mixed']

/** The anchor's suite: each scenario on its turn; closes when through. */
async function anchorSuite(p: Pacer, log: string[], ids = IDS, failAt?: string): Promise<void> {
  try {
    for (const id of ids) {
      await p.turn(id)
      if (id === failAt) throw new Error('anchor failed')
      log.push(`zaqar ${id}`)
      await new Promise((r) => setImmediate(r))
      p.done(id)
    }
  } catch {
    // the bench's runStore catches and reports; the pacer only needs close()
  } finally {
    p.close()
  }
}

/** The leader's suite: each scenario, then its pair; finishes when through. */
async function leaderSuite(p: Pacer, log: string[], ids = IDS): Promise<void> {
  try {
    for (const id of ids) {
      log.push(`missive ${id}`)
      await new Promise((r) => setImmediate(r))
      await p.pair(id)
    }
  } finally {
    p.finish()
  }
}

t.test('each scenario runs on Zaqar right after it ran on Missive', async (t) => {
  const p = new Pacer()
  const log: string[] = []
  const anchor = anchorSuite(p, log)
  await p.ready
  t.same(log, [], 'the anchor waits for its first turn once up')
  await leaderSuite(p, log)
  await anchor
  t.same(log, IDS.flatMap((id) => [`missive ${id}`, `zaqar ${id}`]))
})

t.test('the leader stopping early: the anchor runs the rest at once', async (t) => {
  const p = new Pacer()
  const log: string[] = []
  const anchor = anchorSuite(p, log)
  await p.ready
  await leaderSuite(p, log, ['post1'])
  t.not(await within(anchor, 2000), null, 'the anchor is not left waiting')
  t.same(log, ['missive post1', 'zaqar post1', 'zaqar post10', 'zaqar consume-bulk', 'zaqar mixed'])
})

t.test('the anchor failing: the leader carries on alone', async (t) => {
  const p = new Pacer()
  const log: string[] = []
  const anchor = anchorSuite(p, log, IDS, 'post10')
  await p.ready
  t.not(await within(leaderSuite(p, log), 2000), null, 'the leader is not left waiting')
  await anchor
  t.same(log, ['missive post1', 'zaqar post1', 'missive post10', 'missive consume-bulk', 'missive mixed'])
})

t.test('an anchor that never starts: ready resolves, pairs are no-ops', async (t) => {
  const p = new Pacer()
  p.close()
  await p.ready
  const log: string[] = []
  t.not(await within(leaderSuite(p, log), 2000), null)
  t.same(log, IDS.map((id) => `missive ${id}`))
})

t.test('a scenario the anchor does not run is not waited for', async (t) => {
  const p = new Pacer()
  const log: string[] = []
  // The anchor skips `post10` (as Zaqar skips what it is not compared on).
  const anchor = anchorSuite(p, log, ['post1', 'consume-bulk', 'mixed'])
  await p.ready
  t.not(await within(leaderSuite(p, log), 2000), null, 'no hang on post10')
  await anchor
  t.same(log, ['missive post1', 'zaqar post1', 'missive post10', 'missive consume-bulk', 'zaqar consume-bulk', 'missive mixed', 'zaqar mixed'])
})

t.test('a pair asked for between two anchor scenarios is kept for its turn', async (t) => {
  const p = new Pacer()
  const log: string[] = []
  // The leader pairs before the anchor has asked for the turn (the anchor is slow to come back).
  const paired = p.pair('post1').then(() => log.push('paired post1'))
  await new Promise((r) => setImmediate(r))
  t.same(log, [], 'the leader waits')
  await p.turn('post1')
  log.push('zaqar post1')
  p.done('post1')
  await paired
  t.same(log, ['zaqar post1', 'paired post1'])
})
