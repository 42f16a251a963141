/**
 * The k6 scripts (perf/k6/) cannot be run here (no k6 binary), so: strip their k6 imports, check
 * they parse (`node --check`), then run each scenario function once against a stub of `k6/http`
 * and check the Zaqar requests they send.
 */
import { execFileSync } from 'node:child_process'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t from 'tap'
import { ROOT, tempDir } from '../helpers/index.js'

const K6_DIR = join(ROOT, 'perf/k6')

const STUB = `
export const calls = []
const resp = (status, body) => ({ status, body, json: () => JSON.parse(body) })
const http = {
  post(url, body, params) {
    calls.push({ method: 'POST', url, body, params })
    if (url.includes('/claims')) {
      return resp(201, JSON.stringify({ messages: [
        { id: 'm1', href: '/v2/queues/bench-q0/messages/m1?claim_id=c1' },
        { id: 'm2', href: '/v2/queues/bench-q0/messages/m2?claim_id=c1' },
      ] }))
    }
    return resp(201, '{"resources":[]}')
  },
  del(url, body, params) {
    calls.push({ method: 'DELETE', url, body, params })
    return resp(204, '')
  },
  get(url, params) {
    calls.push({ method: 'GET', url, params })
    return resp(200, '{"messages":[],"links":[]}')
  },
}
export default http
export function check(r, checks) {
  for (const [name, fn] of Object.entries(checks)) if (!fn(r)) throw new Error('check failed: ' + name)
  return true
}
export function sleep() {}
`

interface Call {
  method: string
  url: string
  body?: string | null
  params: { headers: Record<string, string>; tags: { op: string } }
}

t.test('k6 scripts parse and send the Zaqar requests', async (t) => {
  const dir = await tempDir(t, 'missive-k6-')
  await writeFile(join(dir, 'package.json'), '{"type":"module"}')
  await writeFile(join(dir, 'k6-stub.js'), STUB)
  const scripts = (await readdir(K6_DIR)).filter((f) => f.endsWith('.js'))
  t.ok(scripts.includes('lib.js'), 'lib.js exists')
  for (const s of ['producers.js', 'consumers.js', 'mixed.js', 'observers.js']) t.ok(scripts.includes(s), `${s} exists`)

  for (const f of scripts) {
    const src = await readFile(join(K6_DIR, f), 'utf8')
    const stripped = src.replace(/^import\s+(.+?)\s+from\s+['"]k6(\/[a-z]+)?['"]\s*;?\s*$/gm, "import $1 from './k6-stub.js'")
    t.notMatch(stripped, /from\s+['"]k6/, `${f}: every k6 import was replaced`)
    await writeFile(join(dir, f), stripped)
    const env = { ...process.env }
    delete env.NODE_OPTIONS
    t.doesNotThrow(() => execFileSync(process.execPath, ['--check', join(dir, f)], { env, stdio: 'pipe' }), `${f}: node --check`)
  }

  const g = globalThis as Record<string, unknown>
  g.__ENV = { BATCH: '10', VUS: '4', QUEUES: '4' }
  g.__VU = 1
  g.__ITER = 0
  const stub = (await import(pathToFileURL(join(dir, 'k6-stub.js')).href)) as { calls: Call[] }

  const expectOps: Record<string, string[]> = {
    'producers.js': ['post'],
    'consumers.js': ['claim', 'delete'],
    'mixed.js': ['post', 'claim', 'delete'],
    'observers.js': ['list'],
  }
  for (const [file, ops] of Object.entries(expectOps)) {
    stub.calls.length = 0
    const mod = (await import(pathToFileURL(join(dir, file)).href)) as Record<string, unknown> & {
      options: { scenarios: Record<string, { exec: string; executor: string }> }
    }
    const scenarios = Object.values(mod.options.scenarios)
    t.ok(scenarios.length > 0, `${file}: has scenarios`)
    for (const sc of scenarios) {
      t.equal(sc.executor, 'constant-vus', `${file}: closed loop by default`)
      t.type(mod[sc.exec], 'function', `${file}: exec ${sc.exec} is exported`)
      ;(mod[sc.exec] as () => void)()
    }
    t.same([...new Set(stub.calls.map((c) => c.params.tags.op))].sort(), [...ops].sort(), `${file}: request types`)
    for (const c of stub.calls) {
      t.match(c.params.headers['Client-ID'], /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'Client-ID is a UUID')
      t.match(c.params.headers['X-Project-ID'], /^bench-t\d+$/, 'X-Project-ID is set')
      t.match(c.url, /^http:\/\/127\.0\.0\.1:8888\/v2\/queues\/bench-q\d+\/(messages|claims)/, 'v2 queue URL')
    }
    const post = stub.calls.find((c) => c.params.tags.op === 'post')
    if (post) t.equal((JSON.parse(post.body!) as { messages: unknown[] }).messages.length, 10, `${file}: 10 messages per POST`)
    const del = stub.calls.find((c) => c.params.tags.op === 'delete')
    if (del) t.match(del.url, /messages\?ids=m1,m2$/, `${file}: bulk delete by the claimed ids`)
  }
})
