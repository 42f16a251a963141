import t from 'tap'
import { alive, startMissive, waitFor } from '../helpers/index.js'

// Smoke test of `missive serve` from the build and of the startMissive helper; the HTTP API
// itself is covered by tests/http.
t.test('missive serve starts, survives a worker kill -9, and stops cleanly on SIGTERM', async (t) => {
  const m = await startMissive(t)
  t.match(m.baseUrl, /^http:\/\/127\.0\.0\.1:\d+$/)
  const kids = await m.children()
  t.equal(kids.workers.length, 1, 'one worker')
  t.ok(kids.proxy, 'one proxy')

  process.kill(kids.workers[0], 'SIGKILL')
  await waitFor(async () => {
    const now = await m.children()
    return now.workers.length === 1 && now.workers[0] !== kids.workers[0]
  }, { what: 'worker restart' })
  t.pass('worker restarted')

  const exit = await m.stop('SIGTERM')
  t.same(exit, { code: 0, signal: null }, 'exit 0 after an orderly stop')
  t.notOk(alive(kids.proxy!), 'proxy gone')
})

t.test('kill9Tree takes every process down at once', async (t) => {
  const m = await startMissive(t, { config: { workers: 1 } })
  const kids = await m.children()
  await m.kill9Tree()
  await waitFor(() => !alive(kids.proxy!) && kids.workers.every((p) => !alive(p)), { what: 'children gone' })
  t.pass('all gone')
})
