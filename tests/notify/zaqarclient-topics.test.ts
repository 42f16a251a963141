/**
 * Interop: the real python-zaqarclient (Debian `python3-zaqarclient`) drives a topic through
 * tests/interop/zaqarclient_topics.py — create, metadata, subscriptions, post, list, get, bulk
 * get, stats, delete, pop, purge, delete — and two loopback subscribers the client subscribed to
 * another topic get every message it posted there. SQLite and Redis pools.
 */
import { join } from 'node:path'
import t from 'tap'
import { ROOT, startRedis, waitFor } from '../helpers/index.js'
import { startNotifying, startReceiver } from './harness.js'
import { runPython } from '../helpers/python.js'

const PYTHON = '/usr/bin/python3'
const SCRIPT = join(ROOT, 'tests/interop/zaqarclient_topics.py')

const run = runPython

for (const store of ['sqlite', 'redis'] as const) {
  t.test(`${store}: python-zaqarclient drives a topic; its subscriber gets every message`, async (t) => {
    const uri = store === 'sqlite' ? 'sqlite:' : (await startRedis(t, { appendfsync: 'everysec' })).url
    const n = await startNotifying(t, uri)
    const rx = await startReceiver(t)
    const r = await run([SCRIPT, n.client.base, n.client.project, rx.url], 60_000)
    const detail = `stdout:\n${r.stdout.slice(-3000)}\nstderr:\n${r.stderr.slice(-3000)}`
    t.equal(r.code, 0, 'the session exits 0', r.code === 0 ? {} : { diagnostic: true, detail })
    t.match(r.stdout.trimEnd(), /(^|\n)DONE$/, 'stdout ends with DONE', r.code === 0 ? {} : { detail })
    t.notMatch(r.stdout, /^FAIL:/m)
    t.ok((r.stdout.match(/^ok: /gm) ?? []).length >= 18, 'the checks ran')
    const ids = /^FANOUT: (.*)$/m.exec(r.stdout)?.[1]?.split(',') ?? []
    t.equal(ids.length, 3, 'the client posted 3 messages to the fan-out topic')
    const at = (path: string) => rx.received.filter((x) => x.path === path).map((x) => JSON.parse(x.body) as { id: string; topic_name?: string; body: unknown })
    await waitFor(() => at('/fan').length >= 3 && at('/fan2').length >= 3, { what: 'every message at both subscribers', timeoutMs: 30_000 })
    for (const path of ['/fan', '/fan2']) {
      t.same(at(path).map((x) => x.id), ids, `${path}: every message the client posted, in order`)
      t.ok(at(path).every((x) => x.topic_name !== undefined), `${path}: topic notifications`)
    }
  })
}
