import t from 'tap'
import { Histogram, Registry, type OpenMetricsContentType } from 'prom-client'
import { histogramChild } from '../../shared/histogram-child.js'

const BUCKETS = [0.0005, 0.001, 0.005, 0.01, 0.1, 1]

function pair(): [Histogram<'route' | 'method'>, Histogram<'route' | 'method'>] {
  const make = (name: string) => new Histogram({ name, help: name, labelNames: ['route', 'method'], buckets: BUCKETS, registers: [new Registry()] })
  return [make('lib'), make('fast')]
}

/** The series of a histogram as the exposition reads them, metric name left out. */
async function series(h: Histogram<'route' | 'method'>): Promise<unknown[]> {
  return (await h.get()).values.map((v) => ({ labels: v.labels, value: v.value, kind: v.metricName?.replace(/^[a-z]+/, '') }))
}

t.test('a fast child leaves exactly the state the library child leaves, across reset()', async (t) => {
  const [lib, fast] = pair()
  const a = { route: '/v2/queues/{queue}/messages', method: 'POST' }
  const b = { route: '/v2/queues/{queue}/claims', method: 'POST' }
  const libA = lib.labels({ ...a })
  const libB = lib.labels({ ...b })
  const fastA = histogramChild(fast, { ...a })
  const fastB = histogramChild(fast, { ...b })
  t.notOk('startTimer' in fastA, 'the fast path is installed (the prom-client internals it uses still exist)')
  // Bounds themselves, between them, above every bound, zero and negatives.
  const values = [...BUCKETS, 0, -1, 2, 1e9, ...Array.from({ length: 500 }, (_, i) => ((i * 7919) % 1000) / 997 ** ((i % 4) + 1))]
  for (const [i, v] of values.entries()) {
    ;(i % 3 === 0 ? libB : libA).observe(v)
    ;(i % 3 === 0 ? fastB : fastA).observe(v)
  }
  t.same(await series(fast), await series(lib), 'same buckets, sums and counts')
  t.equal(((await fast.get()).values.find((v) => v.metricName === 'fast_count' && v.labels.method === 'POST' && v.labels.route === a.route))?.value, values.length - Math.ceil(values.length / 3))
  lib.reset()
  fast.reset()
  for (const v of [0.002, 0.5, 3]) {
    libA.observe(v)
    fastA.observe(v)
  }
  t.same(await series(fast), await series(lib), 'a reset drops the series; the next observations start a new one')
})

t.test('values the library refuses are refused the same way', async (t) => {
  const [, fast] = pair()
  const child = histogramChild(fast, { route: 'r', method: 'GET' })
  child.observe(0.01)
  t.throws(() => child.observe(Number.NaN), TypeError)
  t.throws(() => child.observe(Number.POSITIVE_INFINITY), TypeError)
  child.observe(0.02)
  const count = (await fast.get()).values.find((v) => v.metricName === 'fast_count')
  t.equal(count?.value, 2, 'only the finite values counted')
})

t.test('with exemplars on, the library child is used as is', async (t) => {
  const registry = new Registry<OpenMetricsContentType>()
  registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE)
  const h = new Histogram({ name: 'ex', help: 'ex', labelNames: ['route'], buckets: BUCKETS, registers: [registry], enableExemplars: true })
  t.ok('startTimer' in histogramChild(h, { route: 'r' }))
})
