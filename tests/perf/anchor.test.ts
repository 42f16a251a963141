/**
 * The bench's comparison with Zaqar (perf/lib/report.ts, T5): ratios per closed-loop scenario and
 * store from one run, the CPU-per-message ratio beside them, and a report without Zaqar saying so.
 * Built from hand-made results: no load runs here.
 */
import t from 'tap'
import type { LoadResult } from '../../perf/lib/load.js'
import { anchorRatios, anchorTable, renderMarkdown, type Report, type ScenarioResult, type StoreResult } from '../../perf/lib/report.js'

function scenario(id: string, msgsIn: number, msgsOut: number, usPerMsg: number | null, p99 = 5): ScenarioResult {
  const result: LoadResult = {
    mode: 'closed',
    seconds: 8,
    offered: null,
    msgsInPerS: msgsIn,
    msgsOutPerS: msgsOut,
    reqPerS: (msgsIn + msgsOut) / 10,
    emptyClaims: 0,
    unsent: 0,
    failures: 0,
    ops: { post: { count: 100, rps: 10, mean: 1, p50: 1, p90: 2, p99, p999: p99, max: p99, failures: {} } },
  }
  return { id, title: id, tool: 'engine', knobs: {}, result, ratios: { reqToHello: null, msgsToRedisWrites: null }, cpu: {}, serverCpu: usPerMsg === null ? null : { usPerReq: usPerMsg * 10, usPerMsg }, notes: [] }
}

function store(name: string, rates: [number, number, number, number], usPerMsg: number | null): StoreResult {
  return {
    store: name,
    pool: '',
    available: true,
    config: {},
    scenarios: [
      scenario('post1', rates[0], 0, usPerMsg),
      scenario('post10', rates[1], 0, usPerMsg),
      scenario('consume-bulk', 0, rates[2], usPerMsg),
      scenario('mixed', rates[3] / 2, rates[3] / 2, usPerMsg),
    ],
  }
}

t.test('every closed-loop scenario gets a ratio per Missive store, by throughput and by CPU', async (t) => {
  const zaqar = store('zaqar', [500, 4000, 1000, 2500], 400)
  const redis = store('redis', [6000, 30000, 20000, 30000], 40)
  const sqlite = store('sqlite', [5000, 40000, 21000, 28000], 50)
  const rows = anchorRatios([sqlite, redis, zaqar])
  t.same(rows.map((r) => r.id), ['post1', 'post10', 'consume-bulk', 'mixed'])
  const post10 = rows.find((r) => r.id === 'post10')!
  t.same(post10.ratios, [
    { store: 'sqlite', ratio: 10, cpu: 8 },
    { store: 'redis', ratio: 7.5, cpu: 10 },
  ])
  // Consumption is compared by messages out, mixed by in + out.
  t.equal(rows.find((r) => r.id === 'consume-bulk')!.ratios[0].ratio, 21)
  t.equal(rows.find((r) => r.id === 'mixed')!.ratios[1].ratio, 12)

  const md = anchorTable([sqlite, redis, zaqar])
  t.match(md, /\| post, 10 messages \| 4,000, p99 5\.00 ms, 400 µs\/msg \| 40,000, p99 5\.00 ms, 50 µs\/msg \| 30,000, p99 5\.00 ms, 40 µs\/msg \| 10\.0× \(CPU 8\.0×\) \| \*\*7\.5×\*\* \(CPU 10\.0×\) \|/, 'under 10× is bold')
  t.match(md, /Missive sqlite \| Missive redis \| sqlite ÷ Zaqar \| redis ÷ Zaqar/)
})

t.test('without server CPU numbers there is no CPU ratio, only the throughput one', async (t) => {
  const rows = anchorRatios([store('redis', [6000, 30000, 20000, 30000], null), store('zaqar', [500, 4000, 1000, 2500], 400)])
  t.same(rows[0].ratios, [{ store: 'redis', ratio: 12, cpu: null }])
})

t.test('a run without Zaqar has no ratio and says why', async (t) => {
  const redis = store('redis', [6000, 30000, 20000, 30000], 40)
  for (const r of anchorRatios([redis])) t.same(r.ratios, [])
  t.match(anchorTable([redis]), /^Zaqar 15 was not measured in this run \(not in --stores\)/)
  const missing: StoreResult = { store: 'zaqar', pool: '', available: false, reason: 'not installed: apt-get install gunicorn', config: {}, scenarios: [] }
  for (const r of anchorRatios([redis, missing])) t.same(r.ratios, [])
  t.match(anchorTable([redis, missing]), /not measured in this run \(not installed: apt-get install gunicorn\)/)
})

t.test('the Markdown report carries the comparison section', async (t) => {
  const report: Report = {
    reportVersion: 1,
    kind: 'quick',
    startedAt: '2026-12-04T00:00:00.000Z',
    finishedAt: '2026-12-04T00:01:00.000Z',
    wallSeconds: 60,
    commit: { hash: 'h', short: 's', dirty: false, subject: 'x' },
    machine: { cpus: 2, cpuModel: 'cpu', memGiB: 1, node: 'v20', platform: 'linux', release: 'r', loadavgStart: [0, 0, 0], loadavgEnd: [0, 0, 0] },
    knobs: {},
    ceilings: { hello: { engine: null, autocannon: null, wrk: null }, redis: { ioredis: null, redisBenchmark: null, available: false } },
    stores: [store('redis', [6000, 30000, 20000, 30000], 40), store('zaqar', [500, 4000, 1000, 2500], 400)],
    targets: [],
    notes: [],
    files: { json: 'a.json', md: 'a.md', svg: 'a.svg', profiles: null },
  }
  const md = renderMarkdown(report)
  t.match(md, /## Missive ÷ Zaqar 15 \(same run\)\n\n\| scenario \(msgs\/s, worst p99, server CPU\) \| Zaqar 15 \| Missive redis \| redis ÷ Zaqar \|/)
  t.match(md, /## Store: zaqar/)
})
