/**
 * `missive limits show|set|clear` (docs/cli.md, docs/limits.md) as a real process against a real
 * `missive serve` with quotas and rate limits on: the override it sets is the one the service
 * enforces, `set` keeps the fields it is not given, bad values are usage errors (exit 2).
 */
import t from 'tap'
import { startMissive } from '../helpers/index.js'
import { zaqarClient } from '../helpers/http.js'
import { jsonOf, runCli } from '../cli/helpers.js'

const TOKEN = 'cli-limits-token'
t.setTimeout(120_000)

t.test('limits show, set, clear', async (t) => {
  const m = await startMissive(t, {
    env: { MISSIVE_ADMIN_TOKEN: TOKEN, MISSIVE_DURABILITY: 'fast' },
    config: { quotas: { enabled: true, queuesPerProject: 10, messagesPerQueue: 100 }, rateLimits: { enabled: true, requestsPerSecond: 1000 } },
  })
  const env = { MISSIVE_URL: m.baseUrl, MISSIVE_ADMIN_TOKEN: TOKEN }
  const c = zaqarClient(m.baseUrl)

  const shown = await runCli(['limits', 'show', c.project, '--json'], env)
  t.equal(shown.code, 0, shown.stderr)
  t.same(jsonOf<{ override: unknown }>(shown).override, null)
  t.equal(jsonOf<{ effective: { queuesPerProject: number } }>(shown).effective.queuesPerProject, 10)
  t.match((await runCli(['limits', 'show', c.project], env)).stdout, /queues-per-project\s.*10/, 'a table by default')

  const set = await runCli(['limits', 'set', c.project, '--queues-per-project', '1', '--messages-per-queue', '2', '--json'], env)
  t.equal(set.code, 0, set.stderr)
  t.same(jsonOf<{ override: unknown }>(set).override, { queuesPerProject: 1, messagesPerQueue: 2 })
  t.equal((await c.req('POST', '/v2/queues/a/messages', { body: { messages: [{ body: 1 }, { body: 2 }] } })).status, 201)
  t.equal((await c.req('POST', '/v2/queues/a/messages', { body: { messages: [{ body: 3 }] } })).status, 403, 'the CLI override is enforced: messages per queue')
  t.equal((await c.req('PUT', '/v2/queues/b')).status, 403, 'and queues per project')

  const more = await runCli(['limits', 'set', c.project, '--requests-per-second', '0.5', '--default', 'messages-per-queue', '--json'], env)
  t.equal(more.code, 0, more.stderr)
  t.same(jsonOf<{ override: unknown }>(more).override, { queuesPerProject: 1, requestsPerSecond: 0.5 }, 'set keeps the other fields; --default drops one')
  t.equal((await runCli(['limits', 'clear', c.project], env)).code, 0)
  t.same(jsonOf<{ override: unknown }>(await runCli(['limits', 'show', c.project, '--json'], env)).override, null, 'cleared')

  for (const bad of [['--queues-per-project', '1.5'], ['--messages-per-queue', '-1'], ['--requests-per-second', 'x'], ['--default', 'nope'], []]) {
    const r = await runCli(['limits', 'set', c.project, ...bad], env)
    t.equal(r.code, 2, `limits set ${bad.join(' ')}: usage error`)
  }
  t.equal((await runCli(['limits', 'show', c.project], { MISSIVE_URL: m.baseUrl, MISSIVE_ADMIN_TOKEN: 'guess' })).code, 4, 'wrong token: 4')
})
