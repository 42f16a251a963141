import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { ENV_VARIABLES } from '../../shared/config.js'
import { ROOT, tempDir } from '../helpers/index.js'

/** Runs `missive <args>` from source (tsx) and collects its exit. */
function missive(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const fullEnv: NodeJS.ProcessEnv = { ...process.env }
    delete fullEnv.NODE_OPTIONS
    delete fullEnv.MISSIVE_CONFIG
    Object.assign(fullEnv, { MISSIVE_LOG_LEVEL: 'silent', MISSIVE_PORT: '0' }, env)
    execFile(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'bin/missive.ts'), ...args],
      { env: fullEnv, cwd: ROOT, timeout: 20_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null
        resolve({ code, stdout, stderr })
      },
    )
  })
}

t.test('configuration errors exit 2 with a clear message', async (t) => {
  const dir = await tempDir(t)
  const base = { MISSIVE_DATA_DIR: join(dir, 'data') }

  const port = await missive(['serve'], { ...base, MISSIVE_PORT: 'abc' })
  t.equal(port.code, 2, 'bad env value')
  t.match(port.stderr, /configuration error: MISSIVE_PORT must be an integer, got "abc"/)
  t.notMatch(port.stderr, /\n\s+at /, 'no stack trace')

  const file = join(dir, 'bad.json')
  await writeFile(file, JSON.stringify({ workers: -1, bogus: true }))
  const bad = await missive(['serve', '--config', file], base)
  t.equal(bad.code, 2, 'bad config file')
  t.match(bad.stderr, /workers/)
  t.match(bad.stderr, /bogus/)

  const missing = await missive(['serve'], { ...base, MISSIVE_CONFIG: join(dir, 'nope.json') })
  t.equal(missing.code, 2, 'missing config file')
  t.match(missing.stderr, /cannot read MISSIVE_CONFIG file/)

  const notJson = join(dir, 'not.json')
  await writeFile(notJson, '{ workers: 1 ')
  const broken = await missive(['serve', `--config=${notJson}`], base)
  t.equal(broken.code, 2, 'unparsable config file')
  t.match(broken.stderr, /is not valid JSON/)

  const long = await missive(['serve'], { MISSIVE_DATA_DIR: join(dir, 'x'.repeat(120)) })
  t.equal(long.code, 2, 'data dir too long for a Unix socket')
  t.match(long.stderr, /dataDir is too long for worker sockets/)

  const pool = await missive(['serve'], { ...base, MISSIVE_DEFAULT_POOL: 'bogus://nowhere' })
  t.equal(pool.code, 2, 'a pool URI the worker rejects')
  t.match(pool.stderr, /Unsupported storage URI|cannot open pool/)
  t.match(pool.stderr, /rejected the configuration/)
})

t.test('usage', async (t) => {
  const help = await missive(['--help'], {})
  t.equal(help.code, 0)
  t.match(help.stdout, /Usage: missive <command>/)
  const serveHelp = await missive(['serve', '--help'], {})
  t.equal(serveHelp.code, 0)
  t.match(serveHelp.stdout, /MISSIVE_DATA_DIR/)
  const none = await missive([], {})
  t.equal(none.code, 2)
  t.match(none.stderr, /a command is required/)
  const unknown = await missive(['frobnicate'], {})
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, /unknown command: frobnicate/)
  const opt = await missive(['serve', '--nope'], {})
  t.equal(opt.code, 2)
  t.match(opt.stderr, /unknown option for serve: --nope/)
})

t.test('help and docs name every environment variable the configuration reads', async (t) => {
  t.ok(ENV_VARIABLES.length >= 19, `${ENV_VARIABLES.length} variables`)
  const help = await missive(['help'], {})
  t.equal(help.code, 0)
  const docs = await readFile(join(ROOT, 'docs/configuration.md'), 'utf8')
  for (const name of ENV_VARIABLES) {
    t.match(help.stdout, new RegExp(`\\b${name}\\b`), `missive help lists ${name}`)
    t.match(docs, new RegExp(`\`${name}\``), `docs/configuration.md documents ${name}`)
  }
  t.match(help.stdout, /booleans: true\/false, yes\/no, on\/off, 1\/0/)
})
