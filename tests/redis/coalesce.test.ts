/**
 * The Coalescer (worker/storage/redis/coalesce.ts): calls on one key made in one turn go to one
 * batch call, after the turn; a batch that is full (maxBatch requests, or fullWeight of weight)
 * goes at once, inside the call that filled it, and the calls after it start a new batch. Each
 * caller gets its own outcome.
 */
import t from 'tap'
import { Coalescer, type Outcome } from '../../worker/storage/redis/coalesce.js'

/** A coalescer whose run records each batch (key and requests) and answers each request doubled. */
function recorder(opts: ConstructorParameters<typeof Coalescer<string, number, number>>[1]) {
  const runs: { key: string; reqs: number[] }[] = []
  const c = new Coalescer<string, number, number>(async (key, reqs) => {
    runs.push({ key, reqs })
    return reqs.map((r): Outcome<number> => (r < 0 ? { err: new Error(`bad ${r}`) } : { ok: r * 2 }))
  }, opts)
  return { c, runs }
}

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r))

t.test('calls of one turn under the full weight go together, after the turn', async (t) => {
  const { c, runs } = recorder({ weigh: (r) => r, fullWeight: 100 })
  const answers = [c.submit('a', 'a', 10), c.submit('b', 'b', 1), c.submit('a', 'a', 20)]
  t.same(runs, [], 'nothing runs inside the turn')
  t.same(await Promise.all(answers), [20, 2, 40], 'each caller gets its own answer')
  t.same(runs, [
    { key: 'a', reqs: [10, 20] },
    { key: 'b', reqs: [1] },
  ])
})

t.test('a batch that reaches the full weight goes at once; the calls after it start a new one', async (t) => {
  const { c, runs } = recorder({ weigh: (r) => r, fullWeight: 40 })
  const answers = [c.submit('a', 'a', 10), c.submit('a', 'a', 10), c.submit('a', 'a', 10)]
  t.same(runs, [], 'under the weight: waiting')
  answers.push(c.submit('a', 'a', 15))
  t.same(runs, [{ key: 'a', reqs: [10, 10, 10, 15] }], 'full: run inside the call that filled it')
  answers.push(c.submit('a', 'a', 5), c.submit('b', 'b', 50))
  t.same(runs.length, 2, 'a single request over the weight goes alone, at once')
  t.same(runs[1], { key: 'b', reqs: [50] })
  t.same(await Promise.all(answers), [20, 20, 20, 30, 10, 100])
  t.same(runs[2], { key: 'a', reqs: [5] }, 'the rest of the turn goes after it, in order')
  t.equal(runs.length, 3)
})

t.test('maxBatch requests make a batch full whatever their weight', async (t) => {
  const { c, runs } = recorder({ maxBatch: 3 })
  const answers = Array.from({ length: 7 }, (_, i) => c.submit('q', 'q', i))
  t.same(
    runs.map((r) => r.reqs),
    [
      [0, 1, 2],
      [3, 4, 5],
    ],
    'two full batches ran at once',
  )
  await nextTurn()
  t.same(
    runs.map((r) => r.reqs),
    [
      [0, 1, 2],
      [3, 4, 5],
      [6],
    ],
    'the last one after the turn',
  )
  t.same(await Promise.all(answers), [0, 2, 4, 6, 8, 10, 12])
})

t.test('maxBatch 1 (no coalescing): every call runs alone, at once', async (t) => {
  const { c, runs } = recorder({ maxBatch: 1 })
  const answers = [c.submit('q', 'q', 1), c.submit('q', 'q', 2)]
  t.same(
    runs.map((r) => r.reqs),
    [[1], [2]],
  )
  t.same(await Promise.all(answers), [2, 4])
})

t.test('a failed request fails alone; a batch that throws fails every request in it', async (t) => {
  const { c } = recorder({})
  const settled = await Promise.allSettled([c.submit('q', 'q', 1), c.submit('q', 'q', -1), c.submit('q', 'q', 3)])
  t.same(
    settled.map((s) => s.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  )
  const failing = new Coalescer<string, number, number>(() => {
    throw new Error('down')
  })
  const all = await Promise.allSettled([failing.submit('q', 'q', 1), failing.submit('q', 'q', 2)])
  t.same(
    all.map((s) => (s.status === 'rejected' ? (s.reason as Error).message : 'ok')),
    ['down', 'down'],
  )
})
