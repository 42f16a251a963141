/**
 * The `missive` admin CLI (docs/cli.md) run as a real process against a real `missive serve`:
 * version, config check, pools, flavors, the operator-wide queue listing (GET /v2/admin/queues)
 * and per-pool backlog, with the documented exit codes.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { freePort, startMissive, tempDir, waitFor } from '../helpers/index.js'
import { zaqarClient } from '../helpers/http.js'
import { jsonOf, runCli } from './helpers.js'

const TOKEN = 'cli-admin-token'

// Some 70 CLI processes, each a Node start-up, and a real service: more than the default file timeout on a busy machine.
t.setTimeout(300_000)

t.test('--version and version print package.json\'s version', async (t) => {
  const pkg = (await import('../../package.json', { with: { type: 'json' } })).default as { version: string }
  const r = await runCli(['--version'])
  t.equal(r.code, 0)
  t.equal(r.stdout, `missive ${pkg.version}\n`)
  const j = await runCli(['version', '--json'])
  t.same(jsonOf(j), { version: pkg.version, node: process.versions.node })
})

t.test('usage errors exit 2', async (t) => {
  for (const args of [[], ['nope'], ['pools'], ['pools', 'add'], ['pools', 'list', '--bogus'], ['queues', 'list', '--limit', 'x'], ['pools', 'show', 'a', 'b']]) {
    const r = await runCli(args, { MISSIVE_URL: 'http://127.0.0.1:1' })
    t.equal(r.code, 2, `missive ${args.join(' ')}`)
    t.match(r.stderr, /^missive: /)
  }
  const help = await runCli(['pools', 'add', '--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /Usage: missive pools add <name> \[options\]/)
  t.match(help.stdout, /--uri <uri>/)
})

t.test('config check: 0 for a valid configuration, 2 with every problem named otherwise', async (t) => {
  const dir = await tempDir(t)
  const good = join(dir, 'good.json')
  await writeFile(good, JSON.stringify({ port: 9999, adminToken: 'secret', defaultPool: 'redis://:pw@127.0.0.1:6379/0' }))
  const ok = await runCli(['config', 'check', '--config', good, '--json'])
  t.equal(ok.code, 0, ok.stderr)
  const shown = jsonOf<Record<string, unknown>>(ok)
  t.equal(shown.port, 9999)
  t.equal(shown.adminToken, '***', 'the token is never printed')
  t.equal(shown.defaultPool, 'redis://***@127.0.0.1:6379/0', 'nor a URI password')
  t.match((await runCli(['config', 'check'], { MISSIVE_CONFIG: good })).stdout, /^configuration OK/)

  const bad = join(dir, 'bad.json')
  await writeFile(bad, JSON.stringify({ port: 'x', nope: 1 }))
  const r = await runCli(['config', 'check', '-c', bad])
  t.equal(r.code, 2)
  t.match(r.stderr, /port: /)
  t.match(r.stderr, /nope/)
  const env = await runCli(['config', 'check'], { MISSIVE_PORT: 'eighty' })
  t.equal(env.code, 2)
  t.match(env.stderr, /MISSIVE_PORT/)
  const store = await runCli(['config', 'check'], { MISSIVE_DEFAULT_POOL: 'mongodb://h/db' })
  t.equal(store.code, 2, 'a store this build cannot open fails the check, not the start')
  t.match(store.stderr, /defaultPool: .*MongoDB/)
  const clash = await runCli(['config', 'check'], { MISSIVE_PORT: '9000', MISSIVE_ADMIN_PORT: '9000' })
  t.equal(clash.code, 2)
  t.match(clash.stderr, /adminPort/)
  const missing = await runCli(['config', 'check', '-c', join(dir, 'absent.json')])
  t.equal(missing.code, 2)
  t.match(missing.stderr, /cannot read/)
})

t.test('against a running service', async (t) => {
  const m = await startMissive(t, { env: { MISSIVE_ADMIN_TOKEN: TOKEN } })
  const env = { MISSIVE_URL: m.baseUrl, MISSIVE_ADMIN_TOKEN: TOKEN }
  const cli = (...args: string[]) => runCli(args, env)

  t.test('the token: none or a wrong one exits 4; an unreachable service exits 1', async (t) => {
    t.equal((await runCli(['pools', 'list'], { MISSIVE_URL: m.baseUrl })).code, 4)
    const wrong = await runCli(['pools', 'list'], { MISSIVE_URL: m.baseUrl, MISSIVE_ADMIN_TOKEN: 'guess' })
    t.equal(wrong.code, 4)
    t.match(wrong.stderr, /Not authorized.*HTTP 403/)
    const port = await freePort()
    const down = await runCli(['pools', 'list'], { MISSIVE_URL: `http://127.0.0.1:${port}`, MISSIVE_ADMIN_TOKEN: TOKEN })
    t.equal(down.code, 1)
    t.match(down.stderr, /cannot reach the admin API/)
  })

  t.test('the token and URL from a config file', async (t) => {
    const dir = await tempDir(t)
    const file = join(dir, 'c.json')
    await writeFile(file, JSON.stringify({ port: m.port, adminToken: TOKEN }))
    const r = await runCli(['pools', 'list', '--json', '--config', file])
    t.equal(r.code, 0, r.stderr)
    t.same(jsonOf<{ name: string }[]>(r).map((p) => p.name), ['default'])
  })

  t.test('pools: add, show, update, list, remove', async (t) => {
    const added = await cli('pools', 'add', 'p1', '--uri', 'sqlite:p1.sqlite', '--weight', '0', '--workers', '1', '--json')
    t.equal(added.code, 0, added.stderr)
    t.match(jsonOf(added), { name: 'p1', uri: 'sqlite:p1.sqlite', weight: 0, options: { workers: 1 } })
    const shown = jsonOf<Record<string, unknown>>(await cli('pools', 'show', 'p1', '--json'))
    t.match(shown, { name: 'p1', weight: 0, flavor: null })
    const updated = await cli('pools', 'update', 'p1', '--weight', '3', '--json')
    t.equal(updated.code, 0, updated.stderr)
    t.match(jsonOf(updated), { name: 'p1', weight: 3 })
    t.match(jsonOf(await cli('pools', 'show', 'p1', '--json')), { weight: 3, options: { workers: 1 } }, '--weight alone keeps the options')
    t.equal((await cli('pools', 'update', 'p1')).code, 2, 'nothing to change is a usage error')

    const table = await cli('pools', 'list')
    t.equal(table.code, 0)
    t.match(table.stdout, /│ name +│ uri +│ weight +│ flavor +│ workers +│/, 'a table with a head row')
    t.match(table.stdout, /│ p1 +│ sqlite:p1\.sqlite +│ 3 +│ - +│ 1 +│/)
    t.same(jsonOf<{ name: string }[]>(await cli('pools', 'list', '--json')).map((p) => p.name), ['default', 'p1'])

    const outside = await cli('pools', 'add', 'p2', '--uri', 'sqlite:/etc/passwd')
    t.equal(outside.code, 6, 'the admin API\'s 400 exits 6')
    t.match(outside.stderr, /inside the data directory.*HTTP 400/)
    const missing = await cli('pools', 'show', 'nope')
    t.equal(missing.code, 5)
    t.match(missing.stderr, /Pool nope does not exist/)
    t.equal((await cli('pools', 'remove', 'nope')).code, 5, 'removing a mistyped name says so')
    const dflt = await cli('pools', 'remove', 'default')
    t.equal(dflt.code, 4, 'the default pool cannot be removed (403)')

    t.test('flavors', async (t) => {
      const f = await cli('flavors', 'add', 'gold', '--pool', 'p1', '--json')
      t.equal(f.code, 0, f.stderr)
      t.match(jsonOf(f), { name: 'gold', pool_list: ['p1'] })
      t.match(jsonOf(await cli('pools', 'show', 'p1', '--json')), { flavor: 'gold' })
      const listed = jsonOf<{ name: string; pool_list: string[] }[]>(await cli('flavors', 'list', '--json'))
      t.same(listed.map((x) => [x.name, x.pool_list]), [['gold', ['p1']]])
      t.match((await cli('flavors', 'list')).stdout, /│ gold +│ p1 +│/)
      const unknown = await cli('flavors', 'add', 'bad', '--pool', 'nope')
      t.equal(unknown.code, 6, 'an unknown pool in the list is the API\'s 400')
      t.match(unknown.stderr, /Pool nope does not exist/)
      t.equal((await cli('flavors', 'add', 'bad')).code, 2, 'no --pool')
      const both = await cli('flavors', 'update', 'gold', '--pool', 'default,p1', '--json')
      t.equal(both.code, 0, both.stderr)
      t.match(jsonOf(both), { name: 'gold', pool_list: ['default', 'p1'] }, 'comma lists and repeats both work')
      t.match(jsonOf(await cli('pools', 'show', 'default', '--json')), { flavor: 'gold' })
      t.equal((await cli('flavors', 'remove', 'gold')).code, 0)
      t.equal((await cli('flavors', 'show', 'gold')).code, 5)
      t.match(jsonOf(await cli('pools', 'show', 'p1', '--json')), { flavor: null }, 'the pool stays, with no flavor')
    })

    t.test('remove', async (t) => {
      const r = await cli('pools', 'remove', 'p1')
      t.equal(r.code, 0, r.stderr)
      t.equal(r.stdout, 'pool p1 removed\n')
      t.equal((await cli('pools', 'show', 'p1')).code, 5)
    })
  })

  t.test('queues list: every project\'s queues, paged; and backlog', async (t) => {
    const a = zaqarClient(m.baseUrl, { project: 'proj-a' })
    const b = zaqarClient(m.baseUrl, { project: 'proj-b' })
    for (const q of ['q1', 'q2', 'q3']) t.equal((await a.req('PUT', `/v2/queues/${q}`)).status, 201)
    t.equal((await b.req('PUT', '/v2/queues/q1')).status, 201)
    const want = [
      ['default', 'proj-a', 'q1'],
      ['default', 'proj-a', 'q2'],
      ['default', 'proj-a', 'q3'],
      ['default', 'proj-b', 'q1'],
    ]
    const all = jsonOf<{ queues: { pool: string; project: string; name: string }[]; links: unknown[] }>(await cli('queues', 'list', '--json'))
    t.same(all.queues.map((q) => [q.pool, q.project, q.name]), want, 'across projects, by (pool, project, queue)')
    t.same(all.links, [], 'a short page has no next link')

    const first = await cli('queues', 'list', '--limit', '3', '--json')
    const page = jsonOf<{ queues: { name: string }[]; links: { rel: string; href: string }[] }>(first)
    t.equal(page.queues.length, 3)
    t.equal(page.links.length, 1, 'a full page has a next link')
    const marker = new URL(page.links[0]!.href, m.baseUrl).searchParams.get('marker')!
    const second = jsonOf<{ queues: { project: string; name: string }[] }>(await cli('queues', 'list', '--limit', '3', '--marker', marker, '--json'))
    t.same(second.queues.map((q) => [q.project, q.name]), [['proj-b', 'q1']], 'the marker continues after the page')
    const walked = jsonOf<{ queues: { project: string; name: string }[] }>(await cli('queues', 'list', '--limit', '1', '--all', '--json'))
    t.same(walked.queues.map((q) => [q.project, q.name]), want.map(([, p, n]) => [p, n]), '--all follows every page')
    const table = await cli('queues', 'list', '--limit', '2')
    t.match(table.stdout, /│ default +│ proj-a +│ q1 +│/)
    t.match(table.stderr, /^more: --marker \S+\n$/, 'a full page tells how to continue')

    t.equal((await cli('queues', 'list', '--marker', 'garbage')).code, 6, 'a marker it did not issue is a 400')
    t.equal((await cli('queues', 'list', '--pool', 'nope')).code, 5)
    t.equal((await cli('queues', 'list', '--limit', '1001')).code, 6)
    t.same(jsonOf<{ queues: unknown[] }>(await cli('queues', 'list', '--pool', 'default', '--json')).queues.length, 4)
    const tenant = await a.req('GET', '/v2/admin/queues')
    t.equal(tenant.status, 403, 'a tenant without the token sees nothing')

    t.equal((await a.req('POST', '/v2/queues/q1/messages', { body: { messages: [{ body: 1 }, { body: 2 }, { body: 3 }] } })).status, 201)
    t.equal((await a.req('POST', '/v2/queues/q1/claims?limit=1', { body: { ttl: 60, grace: 60 } })).status, 201)
    const backlog = await cli('backlog', '--json')
    t.equal(backlog.code, 0, backlog.stderr)
    t.match(jsonOf(backlog), [{ pool: 'default', queues: 4, free: 2, delayed: 0, claimed: 1, total: 3, complete: true, reachable: true }])
    t.match((await cli('backlog', 'default')).stdout, /│ default +│ 4 +│ 2 +│ 0 +│ 1 +│ 3 +│ yes +│ yes +│/)
    t.equal((await cli('backlog', 'nope')).code, 5)
    // The top list comes from the background backlog scan: wait for a pass that saw the claim.
    const top = await waitFor(async () => {
      const r = jsonOf<{ queues: { project: string; name: string; free: number; claimed: number }[] }>(await cli('queues', 'top', '--json'))
      return r.queues.length === 1 && r.queues[0]!.claimed === 1 ? r : undefined
    }, { timeoutMs: 60_000, intervalMs: 500, what: 'a backlog pass that saw proj-a/q1' })
    t.match(top!.queues, [{ project: 'proj-a', name: 'q1', free: 2, claimed: 1 }], 'only queues with free messages, most first')
    t.equal((await cli('queues', 'top', '--by', 'size')).code, 6)

    // A delayed message is free but not claimable: the backlog says how many of the free wait
    // (delays apply on queues with a default delay, as in Zaqar: docs/api.md).
    t.equal((await a.req('PUT', '/v2/queues/later', { body: { _default_message_delay: 600 } })).status, 201)
    t.equal((await a.req('POST', '/v2/queues/later/messages', { body: { messages: [{ body: 4 }] } })).status, 201)
    t.match(jsonOf(await cli('backlog', '--json')), [{ pool: 'default', queues: 5, free: 3, delayed: 1, claimed: 1, total: 4 }])
    t.match((await cli('backlog', 'default')).stdout, /│ default +│ 5 +│ 3 +│ 1 +│ 1 +│ 4 +│ yes +│ yes +│/)
  })
})
