/**
 * Quotas (docs/limits.md) seen by the real python-zaqarclient (Debian python3-zaqarclient) against
 * the whole service on the embedded SQLite store and on a Redis pool: a post over the quota of
 * messages and a queue over the quota of queues raise its ForbiddenError (403), nothing stored.
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import { ROOT, startMissive, startRedis } from '../helpers/index.js'
import { randomProject } from '../helpers/http.js'

const SCRIPT = join(ROOT, 'tests/limits/zaqarclient_quota.py')

function run(args: string[]): Promise<{ code: unknown; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1' }
  // Proxy settings must not send loopback traffic elsewhere.
  for (const k of ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY']) delete env[k]
  return new Promise((resolve) => {
    execFile('/usr/bin/python3', args, { env, cwd: ROOT, timeout: 60_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : ((err as NodeJS.ErrnoException).code ?? null), stdout, stderr })
    })
  })
}

t.setTimeout(120_000)

t.test('python-zaqarclient and quotas', async (t) => {
  const redis = await startRedis(t, { appendfsync: 'everysec' })
  for (const [store, pool] of [['sqlite', 'sqlite:'], ['redis', redis.url]] as const) {
    const m = await startMissive(t, { env: { MISSIVE_DEFAULT_POOL: pool, MISSIVE_DURABILITY: 'fast' }, config: { quotas: { enabled: true, queuesPerProject: 2, messagesPerQueue: 3 } } })
    const r = await run([SCRIPT, m.baseUrl, randomProject('quota')])
    t.equal(r.code, 0, `${store}: the session exits 0`, r.code === 0 ? {} : { diagnostic: true, stdout: r.stdout, stderr: r.stderr.slice(-3000) })
    t.match(r.stdout.trimEnd(), /(^|\n)DONE$/, `${store}: every check passed`)
    t.equal((r.stdout.match(/^ok: /gm) ?? []).length, 7, `${store}: the checks ran`)
    await m.stop()
  }
})
