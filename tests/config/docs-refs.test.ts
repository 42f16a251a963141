/**
 * Checks on what the docs claim (issue 17's documentation defects): no citation of design notes
 * that are not in the repository; the worker socket name as the code builds it; the README index
 * lists every page of docs/; relative links resolve; wherever `/v2/ping` is recommended as a
 * health check, its required headers are said; HEAD ping is not claimed to differ from GET.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { basename, dirname, join, relative, resolve } from 'node:path'
import t from 'tap'
import { poolSocketPath } from '../../catalog/pools.js'
import { ROOT } from '../helpers/index.js'

/** Design notes kept outside the repository: code, tests and docs must cite docs/ or Zaqar's source instead. */
const OUTSIDE_NOTES = ['PERF', 'DESIGN', 'API', 'STYLE', 'ZAQAR-REDIS-NOTES'].map((n) => `${n}.md`)
/** Directories not checked: dependencies, build output, and recorded bench results (history, kept as written). */
const SKIP = new Set(['node_modules', 'dist', '.git', '.tap', 'results', 'data'])
const TEXT = /\.(ts|js|mjs|md|py|sh|ya?ml|json|txt|service|conf)$|^Dockerfile/

function files(dir: string): string[] {
  const out: string[] = []
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(e.name) || e.name.startsWith('.')) continue
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...files(p))
    else if (e.isFile() && TEXT.test(e.name) && e.name !== 'package-lock.json') out.push(p)
  }
  return out
}

const docsDir = join(ROOT, 'docs')
const docs = readdirSync(docsDir).filter((f) => f.endsWith('.md'))
const read = (p: string): string => readFileSync(p, 'utf8')

t.test('nothing cites the design notes that live outside the repository', async (t) => {
  const hits: string[] = []
  for (const f of files(ROOT)) {
    const lines = read(f).split('\n')
    for (const [i, line] of lines.entries()) {
      for (const note of OUTSIDE_NOTES) {
        // Case-sensitive, and not a path inside the repository (docs/api.md is ours).
        const at = line.indexOf(note)
        if (at >= 0 && !/[A-Za-z0-9_/-]$/.test(line.slice(0, at))) hits.push(`${relative(ROOT, f)}:${i + 1}: ${line.trim()}`)
      }
    }
  }
  t.same(hits, [], 'cite docs/ (docs/benchmarks.md for the targets) or Zaqar\'s source instead')
})

t.test('operations.md names the worker socket as the code builds it', async (t) => {
  const ops = read(join(docsDir, 'operations.md'))
  t.equal(basename(poolSocketPath('/d', 'p1', 3)), 'p1-3.sock', 'the code: <pool>-<i>.sock')
  t.match(ops, /dataDir\/run\/<pool>-<i>\.sock/)
  t.notMatch(ops, /worker-<i>\.sock/, 'not the old worker-<i>.sock')
})

t.test("README's documentation index lists every page of docs/", async (t) => {
  const readme = read(join(ROOT, 'README.md'))
  const index = readme.slice(readme.indexOf('## Documentation'))
  t.not(readme.indexOf('## Documentation'), -1)
  for (const d of docs) t.match(index, `(docs/${d})`, `docs/${d} is in the index`)
})

t.test('relative links in README and docs/ point at files that exist', async (t) => {
  const broken: string[] = []
  for (const f of [join(ROOT, 'README.md'), ...docs.map((d) => join(docsDir, d))]) {
    for (const m of read(f).matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) {
      const target = m[1]!
      if (/^[a-z]+:/.test(target)) continue
      if (!existsSync(resolve(dirname(f), target))) broken.push(`${relative(ROOT, f)} → ${target}`)
    }
  }
  t.same(broken, [])
})

t.test('wherever ping is recommended as a health check, its required headers are said', async (t) => {
  const recommend = /health ?check|load balancer|liveness|readiness|HEALTHCHECK|probe/gi
  const checked: string[] = []
  const places = [...docs.map((d) => join(docsDir, d)), join(ROOT, 'README.md')]
  const deploy = join(ROOT, 'deploy')
  if (existsSync(deploy) && statSync(deploy).isDirectory()) places.push(...files(deploy))
  for (const f of places) {
    const text = read(f)
    for (const m of text.matchAll(/\/v2\/ping/g)) {
      const near = text.slice(Math.max(0, m.index - 400), m.index + 400)
      if (!recommend.test(near)) continue
      recommend.lastIndex = 0
      checked.push(relative(ROOT, f))
      const window = text.slice(Math.max(0, m.index - 1200), m.index + 1200)
      t.match(window, /Client-ID/i, `${relative(ROOT, f)}: Client-ID said near its ping recommendation`)
      t.match(window, /X-Project-ID/i, `${relative(ROOT, f)}: X-Project-ID said near its ping recommendation`)
    }
  }
  t.ok(checked.includes('docs/metrics.md'), 'metrics.md recommends ping (and is checked)')
  t.notMatch(read(join(docsDir, 'metrics.md')), /HEAD\s+always 204/, 'HEAD ping gives the same answer as GET (proxy/api/system.ts)')
})
