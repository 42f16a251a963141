/**
 * `missive migrate …`, `missive pools drain` and `missive rebalance` (bin/commands/migrate.ts) run
 * as real processes against a real `missive serve` (supervisor, proxy with its migration runner,
 * one worker per pool, SQLite pools): a queue moved live keeps its messages and claims, a drain
 * empties a pool so it can be removed, and bad input exits with the documented codes.
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { zaqarClient } from '../helpers/http.js'
import { startMissive } from '../helpers/index.js'
import { jsonOf, runCli } from './helpers.js'

const TOKEN = 'cli-admin-token'

t.test('migrate, drain and rebalance against a running service', async (t) => {
  const m = await startMissive(t, { env: { MISSIVE_ADMIN_TOKEN: TOKEN } })
  const env = { MISSIVE_URL: m.baseUrl, MISSIVE_ADMIN_TOKEN: TOKEN }
  const cli = (...args: string[]) => runCli(args, env)
  const project = `p-${randomUUID()}`
  const api = zaqarClient(m.baseUrl, { project, clientId: randomUUID() })

  const added = await cli('pools', 'add', 'b', '--uri', 'sqlite:b.sqlite', '--weight', '0', '--workers', '1')
  t.equal(added.code, 0, added.stderr)
  t.equal((await api.req('PUT', '/v2/queues/q')).status, 201)
  const ids: string[] = []
  for (let i = 0; i < 6; i++) {
    const r = await api.req('POST', '/v2/queues/q/messages', { body: { messages: Array.from({ length: 50 }, (_, j) => ({ ttl: 600, body: { n: i * 50 + j } })) } })
    t.equal(r.status, 201)
    ids.push(...(r.json.resources as string[]).map((h) => h.split('/').pop()!))
  }
  const claim = await api.req('POST', '/v2/queues/q/claims?limit=5', { body: { ttl: 300, grace: 60 } })
  t.equal(claim.status, 201)
  const claimedMessages = (claim.json as { messages: { id: string; href: string }[] }).messages
  const claimed = claimedMessages.map((x) => x.id)
  const claimId = /claim_id=([^&]+)/.exec(claimedMessages[0]!.href)![1]!

  t.test('bad input exits 5 or 6 and starts nothing', async (t) => {
    const unknown = await cli('migrate', 'start', project, 'nope', 'b')
    t.equal(unknown.code, 5, unknown.stderr)
    t.match(unknown.stderr, /Queue nope does not exist/)
    const samePool = await cli('migrate', 'start', project, 'q', 'default')
    t.equal(samePool.code, 6)
    t.match(samePool.stderr, /already on pool default/)
    const noPool = await cli('migrate', 'start', project, 'q', 'zz')
    t.equal(noPool.code, 6)
    t.match(noPool.stderr, /Pool zz does not exist/)
    t.equal((await cli('migrate', 'start', project, 'q')).code, 2, 'a missing argument')
    t.equal((await cli('migrate', 'start', project, 'q', 'b', '--rate', 'fast')).code, 2)
    t.equal((await cli('migrate', 'status', '0000000000000000000000')).code, 5)
    t.same(jsonOf(await cli('migrate', 'list', '--json')), [])
    const lastPool = await cli('pools', 'drain', 'default')
    t.equal(lastPool.code, 6, 'a drain onto nothing (b has weight 0)')
    t.match(lastPool.stderr, /cannot be drained/)
  })

  t.test('migrate start --wait: the queue moves, messages and claims keep working', async (t) => {
    const r = await cli('migrate', 'start', project, 'q', 'b', '--wait', '--json', '--interval', '100')
    t.equal(r.code, 0, r.stderr)
    const done = jsonOf<{ id: string; state: string; from_pool: string; to_pool: string; messages_copied: number; pause_ms: number }>(r)
    t.match(done, { state: 'done', from_pool: 'default', to_pool: 'b' })
    t.ok(done.messages_copied >= 300)
    t.type(done.pause_ms, 'number')
    t.comment(`switch pause ${done.pause_ms} ms`)
    const listed: string[] = []
    for (let next: string | undefined = '/v2/queues/q/messages?limit=10&echo=true&include_claimed=true'; next !== undefined; ) {
      const page = await api.req('GET', next)
      if (page.status === 204 || page.json.messages.length === 0) break
      listed.push(...(page.json.messages as { id: string }[]).map((x) => x.id))
      next = (page.json.links as { rel: string; href: string }[]).find((l) => l.rel === 'next')?.href
    }
    t.same(listed, ids, 'every message, in order, from the new pool')
    const del = await api.req('DELETE', `/v2/queues/q/messages/${claimed[0]}?claim_id=${claimId}`)
    t.equal(del.status, 204, 'a claim taken before the move deletes after it')
    const stolen = await api.req('DELETE', `/v2/queues/q/messages/${claimed[1]}`)
    t.equal(stolen.status, 403, 'and still protects its messages')
    const status = await cli('migrate', 'status', done.id)
    t.equal(status.code, 0)
    t.match(status.stdout, /state +│ done/)
    const list = jsonOf<{ id: string }[]>(await cli('migrate', 'list', '--json', '--state', 'done'))
    t.same(list.map((x) => x.id), [done.id])
    const again = await cli('migrate', 'cancel', done.id)
    t.equal(again.code, 6, 'too late to cancel')
    t.match(again.stderr, /migrate the queue back/)
    const metrics = await (await fetch(`${m.baseUrl}/metrics`)).text()
    t.match(metrics, /missive_migration_finished_total\{[^}]*outcome="done"[^}]*\} 1/, 'the outcome in /metrics')
    t.match(metrics, /missive_migration_messages_moved_total(\{[^}]*\})? [1-9]/)
    t.match(metrics, /missive_migration_switch_pause_seconds_count(\{[^}]*\})? 1/)
    t.notMatch(metrics, /missive_migration_[a-z_]+\{[^}]*queue=/, 'no queue label')
    const follow = await cli('migrate', 'status', done.id, '--wait', '--interval', '50')
    t.equal(follow.code, 0)
    t.notMatch(follow.stdout, /\r/, 'not a terminal: plain lines, no bar')
    t.match(follow.stdout, /q default → b: done/)
  })

  t.test('pools drain --wait moves every queue off; the pool can then be removed', async (t) => {
    const r = await cli('pools', 'drain', 'b', '--wait', '--json', '--interval', '100', '--max-concurrent', '2')
    t.equal(r.code, 0, r.stderr)
    t.match(jsonOf(r), { pool: 'b', draining: true, queues_left: 0, migrating: 0, done: true })
    const stats = await api.req('GET', '/v2/queues/q/stats')
    t.equal(stats.json.messages.total, 299, 'all there, back on default')
    const removed = await cli('pools', 'remove', 'b')
    t.equal(removed.code, 0, removed.stderr)
  })

  t.test('rebalance with one pool is balanced at once', async (t) => {
    const r = await cli('rebalance', '--json')
    t.equal(r.code, 0, r.stderr)
    t.match(jsonOf(r), { balanced: true, started: [] })
    t.equal((await cli('rebalance', '--tolerance', '2')).code, 2)
  })
})
