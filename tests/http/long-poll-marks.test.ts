// Long polling's marks (proxy/long-poll.ts, `DataDriver.listen`): a Redis pool announces a post
// only while a listener has marked its queue, so a request marks its queue before it first parks
// and then tries once more (a post between its first try and the mark was not announced). Marks
// are remembered per queue: a request whose wait a standing mark covers marks nothing, and tries
// once; a failed mark is forgotten; a queue whose placement was removed (deleted, or moved to
// another pool) has its mark dropped and its waiters woken to mark where it lives now.
import t from 'tap'
import { LongPoll, MARK_MIN_MS, MARK_SLACK_MS } from '../../proxy/long-poll.js'
import { waitFor } from '../helpers/index.js'

const ref = { project: 'p', queue: 'q' }

interface Probe {
  attempts: number
  listens: number[]
  /** The next listen's outcome: resolve or reject it by hand. */
  gate: { release: () => void; fail: () => void } | undefined
}

/** A long-poll request on `ref` that finds nothing until `lp.notify` is followed by `found = true`. */
function request(lp: LongPoll, probe: Probe, seconds: number, state: { found: boolean }, manual = false): Promise<boolean> {
  return lp.run(
    ref,
    {
      seconds,
      consumes: false,
      hook: undefined,
      listen: (ms) => {
        probe.listens.push(ms)
        if (!manual) return Promise.resolve()
        return new Promise<void>((resolve, reject) => (probe.gate = { release: resolve, fail: () => reject(new Error('store down')) }))
      },
    },
    async () => {
      probe.attempts++
      return state.found
    },
    (f) => f,
  )
}

const probe = (): Probe => ({ attempts: 0, listens: [], gate: undefined })

/** What a post does for the parked requests: the next try finds something, and they are woken. */
function post(lp: LongPoll, state: { found: boolean }): void {
  state.found = true
  lp.notify(ref, 0)
}

/** A LongPoll with one request on `ref` for `seconds`, parked after its mark and its second try. */
async function oneParked(seconds: number) {
  const lp = new LongPoll({ perProject: 10, total: 10 })
  const a = probe()
  const state = { found: false }
  const first = request(lp, a, seconds, state)
  await waitFor(() => lp.size === 1 && a.attempts === 2, { what: 'the first request parked after its second try' })
  return { lp, a, state, first }
}

t.test('the first park marks the queue for the wait, then tries once more', async (t) => {
  const { lp, a: p, state, first: done } = await oneParked(40)
  t.equal(p.listens.length, 1, 'one mark')
  t.ok(p.listens[0]! >= 40_000 + MARK_SLACK_MS - 50 && p.listens[0]! <= 40_000 + MARK_SLACK_MS, `covers the wait and the slack (${p.listens[0]} ms)`)
  post(lp, state)
  t.equal(await done, true)
  t.equal(p.attempts, 3, 'woken: one more try, which found it')
})

t.test('a short wait is marked for the minimum; a later request it covers marks nothing and tries once', async (t) => {
  const { lp, a, state, first } = await oneParked(1)
  t.ok(a.listens[0]! >= MARK_MIN_MS, `at least ${MARK_MIN_MS} ms (${a.listens[0]})`)
  const b = probe()
  const second = request(lp, b, 2, state)
  await waitFor(() => lp.size === 2 && b.attempts === 1, { what: 'the second request parked' })
  t.equal(b.listens.length, 0, 'no mark: the standing one covers its wait')
  post(lp, state)
  t.same(await Promise.all([first, second]), [true, true])
  t.equal(b.attempts, 2, 'the second request tried once before parking, once when woken')
})

t.test('requests that arrive while a mark is on its way wait for it, then try again', async (t) => {
  const lp = new LongPoll({ perProject: 10, total: 10 })
  const a = probe()
  const b = probe()
  const state = { found: false }
  const first = request(lp, a, 20, state, true)
  await waitFor(() => a.gate !== undefined, { what: 'the mark on its way' })
  const second = request(lp, b, 20, state, true)
  await waitFor(() => b.attempts === 1, { what: "the second request's first try" })
  t.equal(b.listens.length, 0, 'one mark for both')
  t.equal(a.attempts, 1, 'nobody tries again before the mark took hold')
  a.gate!.release()
  await waitFor(() => a.attempts === 2 && b.attempts === 2, { what: 'both tried again' })
  post(lp, state)
  t.same(await Promise.all([first, second]), [true, true])
})

t.test('a failed mark is forgotten: the request parks anyway, the next one marks again', async (t) => {
  const lp = new LongPoll({ perProject: 10, total: 10 })
  const a = probe()
  const state = { found: false }
  const first = request(lp, a, 20, state, true)
  await waitFor(() => a.gate !== undefined, { what: 'the mark on its way' })
  a.gate!.fail()
  await waitFor(() => lp.size === 1 && a.attempts === 2, { what: 'parked after the failed mark' })
  const b = probe()
  const second = request(lp, b, 20, state)
  await waitFor(() => b.attempts === 2, { what: "the second request's tries" })
  t.equal(b.listens.length, 1, 'marked again')
  post(lp, state)
  t.same(await Promise.all([first, second]), [true, true])
})

t.test('a request whose first try finds something marks nothing', async (t) => {
  const lp = new LongPoll({ perProject: 10, total: 10 })
  const a = probe()
  t.equal(await request(lp, a, 20, { found: true }), true)
  t.same([a.attempts, a.listens.length], [1, 0])
})

t.test("a queue deleted or moved elsewhere: its mark is dropped, its waiters try again and mark where it lives now", async (t) => {
  const { lp, a, state, first } = await oneParked(40)
  t.equal(a.listens.length, 1)
  lp.placementRemoved({ project: 'p', queue: 'other' })
  lp.placementRemoved(ref)
  // Woken: a try (where the queue lives now), a new mark, one more try after it, parked again.
  await waitFor(() => a.attempts === 4, { what: 'the tries after the removal' })
  t.equal(a.listens.length, 2, 'marked again')
  // A later request is covered by the new mark: it marks nothing.
  const b = probe()
  const second = request(lp, b, 20, state)
  await waitFor(() => lp.size === 2 && b.attempts === 1, { what: 'the second request parked' })
  t.equal(b.listens.length, 0)
  post(lp, state)
  t.same(await Promise.all([first, second]), [true, true])
  t.equal(a.attempts, 5, 'nothing else woke the first request: the other queue\'s removal did not')
})

t.test('forgetMarks: the next request marks its queue again', async (t) => {
  const { lp, a, state, first } = await oneParked(40)
  lp.forgetMarks()
  const b = probe()
  const second = request(lp, b, 20, state)
  await waitFor(() => lp.size === 2 && b.attempts === 2, { what: 'the second request marked and parked' })
  t.equal(b.listens.length, 1, 'marked again')
  t.equal(a.attempts, 2, 'parked requests are not woken')
  post(lp, state)
  t.same(await Promise.all([first, second]), [true, true])
})
