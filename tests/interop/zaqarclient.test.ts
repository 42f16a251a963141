/**
 * Interop: the real python-zaqarclient (Debian `python3-zaqarclient`) drives the whole service
 * (supervisor → worker → proxy) through zaqarclient_session.py, for API v2 and v1.1, with the
 * default pool on the embedded SQLite store and on Redis. The session covers queues, metadata,
 * post, list, get, bulk get, claim, claim update, delete with claim, release, stats, bulk delete,
 * pop, purge, subscriptions (v2), ping, health and pool + flavor CRUD.
 */
import { join } from 'node:path'
import t from 'tap'
import { ROOT, startMissive, startRedis } from '../helpers/index.js'
import { randomProject } from '../helpers/http.js'
import { runPython } from '../helpers/python.js'

const PYTHON = '/usr/bin/python3'
const SCRIPT = join(ROOT, 'tests/interop/zaqarclient_session.py')

const run = runPython

t.test('python-zaqarclient session against the full service', async (t) => {
  const probe = await run(['-c', 'import zaqarclient.queues.client'], 20_000)
  if (probe.code !== 0) {
    t.fail(
      `${PYTHON} cannot import zaqarclient (exit ${probe.code}): install it with ` +
        '`apt-get install python3-zaqarclient` (CI installs it; this test is not skipped).\n' +
        probe.stderr.slice(-2000),
    )
    return
  }

  const ADMIN = 'interop-admin-token'
  const redis = await startRedis(t, { appendfsync: 'always' })
  const stores: [string, string, (version: string) => string][] = [
    ['sqlite', 'sqlite:', (v) => `sqlite:interop-${v}.sqlite`],
    // Zaqar's own URI form for the extra pool: another database of the same server.
    ['redis', redis.url, (v) => `${redis.url}?dbid=${v === '2' ? 5 : 6}`],
  ]
  for (const [store, defaultPool, poolUri] of stores) {
    const m = await startMissive(t, { env: { MISSIVE_DEFAULT_POOL: defaultPool, MISSIVE_ADMIN_TOKEN: ADMIN } })
    for (const version of ['2', '1.1']) {
      const project = randomProject('interop')
      const r = await run([SCRIPT, m.baseUrl, version, project, ADMIN, poolUri(version)], 90_000)
      const what = `${store} v${version}`
      const detail = `stdout:\n${r.stdout.slice(-3000)}\nstderr:\n${r.stderr.slice(-3000)}\nservice:\n${m.output().slice(-3000)}`
      t.equal(r.code, 0, `${what}: the session exits 0`, r.code === 0 ? {} : { diagnostic: true, detail })
      t.match(r.stdout.trimEnd(), /(^|\n)DONE$/, `${what}: stdout ends with DONE`, r.code === 0 ? {} : { detail })
      t.notMatch(r.stdout, /^FAIL:/m, `${what}: no failed check`)
      t.ok((r.stdout.match(/^ok: /gm) ?? []).length >= (version === '2' ? 35 : 25), `${what}: the checks ran`)
    }
    await m.stop()
  }
})
