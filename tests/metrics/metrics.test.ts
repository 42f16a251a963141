// /metrics: one exposition for every process, exact counters, promtool-clean, low cardinality;
// request ids in the access log; the shipped alert rules and dashboard fit the exposition.
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import type { TapTest } from '../contract/suite.js'
import { startMissive, tempDir, waitFor } from '../helpers/index.js'
import { metricSum as sum } from '../helpers/metrics.js'
import { routingKey } from '../../proxy/placement-cache.js'
import { workerFor } from '../../proxy/worker-choice.js'

const run = promisify(execFile)
const ROOT = join(import.meta.dirname, '..', '..')

async function promtool(t: TapTest, args: string[], input?: string): Promise<{ code: number; out: string }> {
  try {
    await run('promtool', ['--version'])
  } catch {
    t.fail('promtool is missing: apt-get install prometheus (the Debian package ships promtool)')
    return { code: -1, out: '' }
  }
  let file: string | undefined
  if (input !== undefined) {
    file = join(await tempDir(t), 'metrics.txt')
    writeFileSync(file, input)
  }
  try {
    const { stdout, stderr } = await run('sh', ['-c', file ? `promtool ${args.join(' ')} < "${file}"` : `promtool ${args.join(' ')}`])
    return { code: 0, out: stdout + stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, out: e.stdout + e.stderr }
  }
}


/** The series (name + labels, no values) of Missive's own request/storage metrics. */
function series(text: string): Set<string> {
  const out = new Set<string>()
  for (const line of text.split('\n')) {
    const m = /^(missive_(?:http|rpc|storage|messages|catalog)[a-z0-9_]*(?:\{.*\})?) \S+$/.exec(line)
    if (m) out.add(m[1]!)
  }
  return out
}

t.test('metrics of a known workload, summed across processes', async (t) => {
  // Every scrape collects afresh: the test reads each change as soon as it is made.
  const m = await startMissive(t, { env: { MISSIVE_WORKERS: '2', MISSIVE_LOG_LEVEL: 'info', MISSIVE_METRICS_CACHE_MS: '0' } })
  const project = `p-${randomUUID()}`
  const headers = { 'Client-ID': randomUUID(), 'X-Project-ID': project, 'Content-Type': 'application/json' }
  const call = (method: string, path: string, body?: unknown) =>
    fetch(m.baseUrl + path, { method, headers, ...(body !== undefined && { body: JSON.stringify(body) }) })

  // 10 posts × 3 messages over seven queues, 2 claims of 5, 4 single deletes with the claim id
  // + 1 bulk delete of 3 ids = 7 deleted. Both workers must serve some: a queue's worker is a
  // hash of its name and project (proxy/worker-choice.ts), so the last name is chosen to make
  // sure, not hoped for (with a random project, all seven landed on one worker 1 time in 64).
  const workerOf = (q: string): number => workerFor([0, 1], routingKey(project, q))!
  const queues = ['q0', 'q1', 'q2', 'q3', 'q4', 'q5']
  let last = 6
  while (new Set([...queues, `q${last}`].map(workerOf)).size < 2) last++
  queues.push(`q${last}`)
  for (const [i, q] of queues.entries()) {
    t.equal((await call('POST', `/v2/queues/${q}/messages`, { messages: [{ body: i }, { body: i }, { body: i }] })).status, 201)
  }
  for (let i = 0; i < 3; i++) {
    t.equal((await call('POST', '/v2/queues/q0/messages', { messages: [{ body: i }, { body: i }, { body: i }] })).status, 201)
  }
  const claimed: { href: string }[] = []
  for (let i = 0; i < 2; i++) {
    const r = await call('POST', '/v2/queues/q0/claims?limit=5')
    t.equal(r.status, 201)
    claimed.push(...((await r.json()) as { messages: { href: string }[] }).messages)
  }
  t.equal(claimed.length, 10)
  for (const msg of claimed.slice(0, 4)) t.equal((await call('DELETE', msg.href)).status, 204)
  const ids = claimed.slice(4, 7).map((x) => x.href.split('/').pop()!.split('?')[0])
  t.equal((await call('DELETE', `/v2/queues/q0/messages?ids=${ids.join(',')}`)).status, 204)

  const res = await fetch(`${m.baseUrl}/metrics`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  const text = await res.text()
  t.equal(sum(text, 'missive_messages_posted_total'), 30, 'posted')
  t.equal(sum(text, 'missive_messages_claimed_total'), 10, 'claimed')
  t.equal(sum(text, 'missive_messages_deleted_total'), 7, 'deleted')
  t.equal(sum(text, 'missive_http_requests_total', { route: '/v2/queues/{queue}/messages', method: 'POST', status: '2xx' }), 10)
  t.equal(sum(text, 'missive_http_requests_total', { route: '/v2/queues/{queue}/claims', method: 'POST', status: '2xx' }), 2)
  t.ok(sum(text, 'missive_storage_operation_duration_seconds_count', { process: 'worker-0' }) > 0, 'worker 0 reported')
  t.ok(sum(text, 'missive_storage_operation_duration_seconds_count', { process: 'worker-1' }) > 0, 'worker 1 reported')
  t.equal(sum(text, 'missive_storage_operation_duration_seconds_count', { operation: 'postMessages' }), 10)
  t.equal(sum(text, 'missive_rpc_worker_up'), 2, 'both workers up')
  t.match(text, /missive_supervisor_child_restarts_total\{child="worker-1",process="supervisor"\} 0/)
  t.match(text, /missive_nodejs_eventloop_lag_p99_seconds\{process="worker-0"\}/)

  const check = await promtool(t, ['check', 'metrics'], text)
  t.equal(check.code, 0, `promtool check metrics: ${check.out}`)

  // Request ids: echoed, and in the access log line of that request; a malformed one replaced.
  const id = `req-${randomUUID()}`
  const echoed = await fetch(`${m.baseUrl}/v2/queues/q0/stats`, { headers: { ...headers, 'X-Openstack-Request-Id': id } })
  t.equal(echoed.headers.get('x-openstack-request-id'), id)
  const bad = 'req-not-a-uuid-INJECT'
  const replaced = await fetch(`${m.baseUrl}/v2/queues/q0/stats`, { headers: { ...headers, 'X-Openstack-Request-Id': bad } })
  const newId = replaced.headers.get('x-openstack-request-id')!
  t.not(newId, bad)
  await waitFor(() => m.output().includes(id) && m.output().includes(newId), { timeoutMs: 5000, what: 'both requests in the access log' })
  const line = m.output().split('\n').find((l) => l.includes(id))
  t.ok(line, 'the request id appears in the log')
  const entry = JSON.parse(line!) as Record<string, unknown>
  t.match(entry, { requestId: id, project, route: '/v2/queues/{queue}/stats', status: 200, method: 'GET' })
  t.type(entry.ms, 'number')
  t.notOk(m.output().includes(bad), 'the malformed id never reaches the log')

  // Cardinality: a thousand new queues add no series (queue names are never label values).
  // First the same kinds of request on a few queues, so every worker has served each operation
  // once: what is compared is what new *queues* add, not what a worker's first stats call adds.
  const workload = async (names: string[]): Promise<void> => {
    for (let i = 0; i < names.length; i += 50) {
      await Promise.all(names.slice(i, i + 50).map((q) => call('POST', `/v2/queues/${q}/messages`, { messages: [{ body: 1 }] })))
    }
    await Promise.all(names.slice(0, 20).map((q) => call('GET', `/v2/queues/${q}/stats`)))
    await Promise.all(names.slice(0, 20).map((q) => call('POST', `/v2/queues/${q}/claims?limit=1`)))
  }
  await workload(Array.from({ length: 20 }, (_, i) => `warm-${i}`))
  await fetch(`${m.baseUrl}/metrics`)
  const before = series(await (await fetch(`${m.baseUrl}/metrics`)).text())
  await workload(Array.from({ length: 1000 }, (_, i) => `many-${i}`))
  const after = series(await (await fetch(`${m.baseUrl}/metrics`)).text())
  const added = [...after].filter((s) => !before.has(s))
  t.same(added, [], '1,000 queues added no series')
  t.notOk([...after].some((s) => s.includes('many-')), 'no queue name in any label')
})

t.test('alert rules and dashboard fit the exposition', async (t) => {
  const rules = await promtool(t, ['check', 'rules', join(ROOT, 'deploy/prometheus/alerts.yml')])
  t.equal(rules.code, 0, `promtool check rules: ${rules.out}`)
  const m = await startMissive(t)
  const text = await (await fetch(`${m.baseUrl}/metrics`)).text()
  const exposed = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((x) => x[1]!))
  const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/missive-dashboard.json'), 'utf8')) as {
    panels: { targets: { expr: string }[] }[]
  }
  const alerts = readFileSync(join(ROOT, 'deploy/prometheus/alerts.yml'), 'utf8')
  const queried = new Set<string>()
  for (const p of dashboard.panels) for (const target of p.targets) for (const n of target.expr.matchAll(/missive_[a-z0-9_]+/g)) queried.add(n[0])
  for (const n of alerts.matchAll(/missive_[a-z0-9_]+/g)) queried.add(n[0])
  t.ok(queried.size > 8, `the dashboard and alerts query ${queried.size} metrics`)
  for (const name of queried) {
    const base = name.replace(/_(bucket|sum|count)$/, '')
    t.ok(exposed.has(name) || exposed.has(base), `${name} is exposed`)
  }
})
