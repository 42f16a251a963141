/**
 * Strategy `keystone` against a real Keystone (tests/auth/keystone-server.ts): every route with no,
 * bad, unscoped, expired, revoked, member and admin tokens, on the embedded SQLite store and on a
 * Redis pool; a token for project alpha never reaches beta; the validation cache (revocation seen
 * once an entry lapses, expiry at once); python-zaqarclient's standard session with Keystone auth;
 * Keystone down → 503 (last: it stops Keystone).
 */
import { join } from 'node:path'
import t from 'tap'
import { ROOT, startMissive, waitFor } from '../helpers/index.js'
import { zaqarClient, type ZaqarClient } from '../helpers/http.js'
import { backend, startProxy } from './harness.js'
import { startKeystone } from './keystone-server.js'
import { everyRoute } from './routes.js'
import { runPython } from '../helpers/python.js'

const OPERATOR = 'operator-secret-token'

function as(base: string, token: string | undefined, project?: string): ZaqarClient {
  // A first request waits for Missive's service login and a validation by a one-thread Keystone.
  const c = zaqarClient(base, { timeoutMs: 60_000 })
  return {
    ...c,
    req: (method, path, opts = {}) =>
      c.req(method, path, { ...opts, headers: { 'X-Project-ID': project ?? null, ...(token !== undefined && { 'X-Auth-Token': token }), ...opts.headers } }),
  }
}

// Bootstrapping Keystone (db_sync, bootstrap) alone takes 30-90 s on a busy machine.
t.setTimeout(900_000)
const ks = await startKeystone(t)
const keystoneConfig = (cacheSeconds: number): Record<string, unknown> => ({
  adminToken: OPERATOR,
  // A generous timeout: the test Keystone is one uwsgi thread on a busy machine.
  auth: { strategy: 'keystone', keystone: { url: ks.url, ...ks.service, cacheSeconds, timeoutMs: 30_000 } },
})

for (const store of ['sqlite', 'redis'] as const) {
  t.test(`keystone on ${store}`, async (t) => {
    const b = await backend(t, store)
    const p = await startProxy(t, b, keystoneConfig(300))
    const alpha = ks.projects.alpha!
    const beta = ks.projects.beta!
    const alice = await ks.token('alice', 'alpha')
    const bob = await ks.token('bob', 'beta')
    const carol = await ks.token('carol', 'alpha')
    const revoked = await ks.token('alice', 'alpha')
    await ks.revoke(revoked)
    const unscoped = await ks.unscoped('alice')
    // Warm the proxy's service token first: a short-lived token must not expire while Missive logs in.
    t.equal((await as(p.base, alice).req('GET', '/v2/queues')).status, 200, 'a member token is accepted')
    const expiring = await ks.shortLived('alice', 'alpha', 30)
    t.equal((await as(p.base, expiring).req('GET', '/v2/queues')).status, 200, 'a short-lived token works while it lasts (and is cached)')
    await waitFor(async () => (await as(p.base, expiring).req('GET', '/v2/queues')).status === 401, { what: 'the short-lived token to expire', timeoutMs: 60_000, intervalMs: 250 })

    const refused: [string, string | undefined][] = [
      ['no token', undefined],
      ['a bogus token', 'gAAAAABbogus'],
      ['an unscoped token', unscoped],
      ['a revoked token', revoked],
      ['an expired token', expiring],
    ]
    for (const r of everyRoute()) {
      for (const [what, token] of refused) {
        const res = await as(p.base, token, alpha).req(r.method, r.path)
        t.equal(res.status, 401, `${r.label}: ${what} → 401`)
        t.equal(res.headers.get('www-authenticate'), `Keystone uri="${ks.url}"`, `${r.label}: ${what}: WWW-Authenticate`)
      }
      const m = await as(p.base, alice).req(r.method, r.path)
      if (r.admin) t.equal(m.status, 403, `${r.label}: member token → 403`)
      else t.ok(m.status !== 401 && m.status !== 403, `${r.label}: member token passes (${m.status})`)
      const a = await as(p.base, carol).req(r.method, r.path)
      t.ok(a.status !== 401 && a.status !== 403, `${r.label}: admin token passes (${a.status})`)
      t.equal((await as(p.base, alice, beta).req(r.method, r.path)).status, 403, `${r.label}: naming another project → 403`)
    }

    t.test('a token for alpha never reaches beta', async (t) => {
      const a = as(p.base, alice)
      t.equal((await a.req('PUT', '/v2/queues/same')).status, 201)
      const posted = await a.req('POST', '/v2/queues/same/messages', { body: { messages: [{ body: 'alpha only', ttl: 300 }] } })
      const id = String(posted.json.resources[0]).split('/').pop()!
      t.equal((await as(p.base, bob, alpha).req('GET', '/v2/queues/same/messages?echo=true')).status, 403)
      const bb = as(p.base, bob)
      t.same((await bb.req('GET', '/v2/queues')).json.queues, [], "beta lists none of alpha's queues")
      t.equal((await bb.req('GET', `/v2/queues/same/messages/${id}`)).status, 404)
      t.equal((await a.req('GET', `/v2/queues/same/messages/${id}`)).json.body, 'alpha only')
    })

    t.test('revocation is seen once the cache entry lapses', async (t) => {
      const short = await startProxy(t, b, keystoneConfig(1))
      const tok = await ks.token('alice', 'alpha')
      t.equal((await as(short.base, tok).req('GET', '/v2/queues')).status, 200, 'valid, now cached')
      await ks.revoke(tok)
      await waitFor(async () => (await as(short.base, tok).req('GET', '/v2/queues')).status === 401, { what: 'the revoked token to be refused' })
      t.pass('refused after revocation')
    })
  })
}

t.test('python-zaqarclient with Keystone auth: the standard session, admin calls included', async (t) => {
  const m = await startMissive(t, {
    config: { auth: { strategy: 'keystone', keystone: { url: ks.url, ...ks.service, timeoutMs: 30_000 } } },
  })
  const member = await ks.token('alice', 'alpha')
  const admin = await ks.token('carol', 'alpha')
  const r = await runPython([join(ROOT, 'tests/auth/zaqarclient_keystone.py'), m.baseUrl, '2', 'sqlite:interop-ks.sqlite'], 240_000, {
    KS_URL: ks.url,
    KS_MEMBER_TOKEN: member,
    KS_ADMIN_TOKEN: admin,
  })
  const detail = `stdout:\n${r.stdout.slice(-3000)}\nstderr:\n${r.stderr.slice(-3000)}\nservice:\n${m.output().slice(-3000)}`
  t.equal(r.code, 0, 'the session exits 0', r.code === 0 ? {} : { detail })
  t.match(r.stdout.trimEnd(), /(^|\n)DONE$/, 'stdout ends with DONE')
  t.notMatch(r.stdout, /^FAIL:/m, 'no failed check')
  t.ok((r.stdout.match(/^ok: /gm) ?? []).length >= 35, 'the checks ran')
  t.match(r.stdout, /ok: health: every probe step succeeded/, 'admin calls (health) made with an admin token')
  t.match(r.stdout, /ok: pool deleted/, 'admin calls (pools, flavors) made with an admin token')
  await m.stop()
})

t.test('Keystone down: cached tokens still work, others get 503; the operator token works', async (t) => {
  const b = await backend(t, 'sqlite')
  const p = await startProxy(t, b, keystoneConfig(300))
  const alice = await ks.token('alice', 'alpha')
  const other = await ks.token('bob', 'beta')
  t.equal((await as(p.base, alice).req('GET', '/v2/queues')).status, 200)
  await ks.stop()
  t.equal((await as(p.base, alice).req('GET', '/v2/queues')).status, 200, 'cached: served')
  const r = await as(p.base, other).req('GET', '/v2/queues')
  t.equal(r.status, 503, 'not cached: 503')
  t.equal(r.headers.get('retry-after'), '1')
  t.equal(r.json.title, 'Service temporarily unavailable')
  t.equal((await as(p.base, OPERATOR, 'ops').req('GET', '/v2/pools')).status, 200, 'the operator token needs no Keystone')
})
