/**
 * Quotas (docs/limits.md) seen by the real python-zaqarclient (Debian python3-zaqarclient) against
 * the whole service on the embedded SQLite store and on a Redis pool: a post over the quota of
 * messages and a queue over the quota of queues raise its ForbiddenError (403), nothing stored.
 */
import { join } from 'node:path'
import t from 'tap'
import { ROOT, startMissive, startRedis } from '../helpers/index.js'
import { randomProject } from '../helpers/http.js'
import { runPython, type PythonRun } from '../helpers/python.js'

const SCRIPT = join(ROOT, 'tests/limits/zaqarclient_quota.py')

const run = (args: string[]): Promise<PythonRun> => runPython(args, 60_000)

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
