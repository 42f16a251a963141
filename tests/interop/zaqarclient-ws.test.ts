/**
 * Interop: python-zaqarclient's websocket transport (zaqarclient/transport/ws.py, over Debian's
 * python3-websocket) drives the whole service (supervisor → worker → proxy) through
 * zaqarclient_ws.py, with the default pool on the embedded SQLite store and on Redis: every
 * queue, message and claim action, a subscription and its push, and the client's error mapping.
 */
import { join } from 'node:path'
import t from 'tap'
import { ROOT, startMissive, startRedis } from '../helpers/index.js'
import { randomProject } from '../helpers/http.js'
import { runPython } from '../helpers/python.js'

const PYTHON = '/usr/bin/python3'
const SCRIPT = join(ROOT, 'tests/interop/zaqarclient_ws.py')

const run = runPython

t.test('python-zaqarclient websocket transport against the full service', async (t) => {
  const probe = await run(['-c', 'import websocket, zaqarclient.transport.ws'], 20_000)
  if (probe.code !== 0) {
    t.fail(`${PYTHON} cannot import websocket / zaqarclient (apt-get install python3-websocket python3-zaqarclient):\n${probe.stderr.slice(-2000)}`)
    return
  }
  const redis = await startRedis(t, { appendfsync: 'everysec' })
  for (const [store, pool] of [
    ['sqlite', 'sqlite:'],
    ['redis', `${redis.url}/0`],
  ] as const) {
    const m = await startMissive(t, { env: { MISSIVE_DEFAULT_POOL: pool, MISSIVE_DURABILITY: 'fast' } })
    const r = await run([SCRIPT, `${m.baseUrl.replace(/^http/, 'ws')}/v2/ws`, randomProject('ws-interop')], 60_000)
    const detail = `stdout:\n${r.stdout.slice(-3000)}\nstderr:\n${r.stderr.slice(-3000)}\nservice:\n${m.output().slice(-3000)}`
    t.equal(r.code, 0, `${store}: the session exits 0`, r.code === 0 ? {} : { diagnostic: true, detail })
    t.match(r.stdout.trimEnd(), /(^|\n)DONE$/, `${store}: stdout ends with DONE`)
    t.notMatch(r.stdout, /^FAIL:/m, `${store}: no failed check`)
    t.ok((r.stdout.match(/^ok: /gm) ?? []).length >= 24, `${store}: the checks ran (24)`)
    await m.stop()
  }
})
