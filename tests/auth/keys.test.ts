/**
 * Strategy `keys` (docs/auth.md): every route with no, bad, expired, revoked and valid keys, on
 * the embedded SQLite store with a SQLite catalog and on a Redis pool with a Redis catalog; a key
 * for project A never reaches project B; a key revoked on one proxy is refused by another sharing
 * the catalog; the keys admin API.
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { waitFor } from '../helpers/index.js'
import { zaqarClient, type ZaqarClient } from '../helpers/http.js'
import { backend, startProxy, type Backend } from './harness.js'
import { everyRoute } from './routes.js'

const OPERATOR = 'operator-secret-token'

/** A fetch client that sends `token` (if any) and no X-Project-ID unless told. */
function as(base: string, token: string | undefined, project?: string): ZaqarClient {
  const c = zaqarClient(base)
  return {
    ...c,
    req: (method, path, opts = {}) =>
      c.req(method, path, {
        ...opts,
        headers: { 'X-Project-ID': project ?? null, ...(token !== undefined && { 'X-Auth-Token': token }), ...opts.headers },
      }),
  }
}

async function createKey(base: string, body: Record<string, unknown>): Promise<{ id: string; key: string }> {
  const r = await as(base, OPERATOR, 'ops').req('POST', '/v2/admin/keys', { body })
  if (r.status !== 201) throw new Error(`create key: ${r.status} ${r.text}`)
  return r.json as { id: string; key: string }
}

for (const store of ['sqlite', 'redis'] as const) {
  t.test(`keys on ${store}`, async (t) => {
    const b: Backend = await backend(t, store)
    const p = await startProxy(t, b, { adminToken: OPERATOR, auth: { strategy: 'keys', keyCacheMs: 60_000 } })
    const pa = `pa-${randomUUID()}`
    const pb = `pb-${randomUUID()}`
    const member = await createKey(p.base, { project: pa, roles: ['member'] })
    const memberB = await createKey(p.base, { project: pb })
    const admin = await createKey(p.base, { project: pa, roles: ['admin'] })
    const revoked = await createKey(p.base, { project: pa })
    const expiring = await createKey(p.base, { project: pa, ttl: 1 })
    // Warm the cache for both, so refusal below is revocation and expiry, not a cache miss.
    t.equal((await as(p.base, revoked.key).req('GET', '/v2/queues')).status, 200, 'a fresh key is accepted')
    t.equal((await as(p.base, expiring.key).req('GET', '/v2/queues')).status, 200, 'an unexpired key is accepted')
    t.equal((await as(p.base, OPERATOR, 'ops').req('DELETE', `/v2/admin/keys/${revoked.id}`)).status, 204, 'revoked')
    await waitFor(async () => (await as(p.base, expiring.key).req('GET', '/v2/queues')).status === 401, { what: 'the 1 s key to expire' })

    // A key-shaped token with a real id and a wrong secret, and one with no stored id.
    const wrongSecret = `${member.key.slice(0, 21)}${'A'.repeat(43)}`
    const unknownId = `msv_ffffffffffffffff_${member.key.slice(21)}`
    const refused: [string, string | undefined][] = [
      ['no token', undefined],
      ['empty token', ''],
      ['garbage token', 'not-a-key'],
      ['wrong secret', wrongSecret],
      ['unknown key id', unknownId],
      ['revoked key', revoked.key],
      ['expired key', expiring.key],
    ]
    const routes = everyRoute()
    t.ok(routes.length >= 60, `${routes.length} routes`)
    for (const r of routes) {
      for (const [what, token] of refused) {
        const res = await as(p.base, token, pa).req(r.method, r.path)
        t.equal(res.status, 401, `${r.label}: ${what} → 401`)
        if (r.method !== 'HEAD') t.equal(res.json?.title, 'Unauthorized', `${r.label}: ${what}: JSON error`)
      }
      const m = await as(p.base, member.key).req(r.method, r.path)
      if (r.admin) t.equal(m.status, 403, `${r.label}: member key → 403`)
      else t.ok(m.status !== 401 && m.status !== 403, `${r.label}: member key passes (${m.status})`)
      const a = await as(p.base, admin.key).req(r.method, r.path)
      t.ok(a.status !== 401 && a.status !== 403, `${r.label}: admin key passes (${a.status})`)
      const mismatch = await as(p.base, member.key, pb).req(r.method, r.path)
      t.equal(mismatch.status, 403, `${r.label}: member key naming another project → 403`)
    }

    t.test('a key for project A never reaches project B', async (t) => {
      const a = as(p.base, member.key)
      t.equal((await a.req('PUT', '/v2/queues/shared-name')).status, 201)
      const posted = await a.req('POST', '/v2/queues/shared-name/messages', { body: { messages: [{ body: { secret: 'of A' }, ttl: 300 }] } })
      t.equal(posted.status, 201)
      const id = String(posted.json.resources[0]).split('/').pop()!
      // B's key, naming A's project: refused outright.
      for (const [method, path] of [
        ['GET', '/v2/queues/shared-name/messages?echo=true'],
        ['GET', `/v2/queues/shared-name/messages/${id}`],
        ['DELETE', `/v2/queues/shared-name/messages/${id}`],
        ['GET', '/v2/queues'],
        ['DELETE', '/v2/queues/shared-name'],
        ['POST', '/v2/queues/shared-name/claims'],
      ] as const) {
        t.equal((await as(p.base, memberB.key, pa).req(method, path)).status, 403, `B naming A: ${method} ${path} → 403`)
      }
      // B's key on its own project (filled in): the same names hold nothing of A's.
      const bk = as(p.base, memberB.key)
      const list = await bk.req('GET', '/v2/queues')
      t.same(list.json.queues, [], "B's project lists no queues")
      t.equal((await bk.req('GET', `/v2/queues/shared-name/messages/${id}`)).status, 404, "A's message id is not found in B")
      const claim = await bk.req('POST', '/v2/queues/shared-name/claims', { body: { ttl: 60, grace: 60 } })
      t.equal(claim.status, 204, 'B claims nothing')
      // A still has its message, untouched.
      const mine = await a.req('GET', `/v2/queues/shared-name/messages/${id}`)
      t.equal(mine.status, 200)
      t.same(mine.json.body, { secret: 'of A' })
    })

    t.test('keys admin API', async (t) => {
      const op = as(p.base, OPERATOR, 'ops')
      const listed = await op.req('GET', '/v2/admin/keys?limit=100')
      t.equal(listed.status, 200)
      const ids = listed.json.keys.map((k: { id: string }) => k.id)
      t.ok(ids.includes(member.id) && !ids.includes(revoked.id), 'lists live keys, not revoked ones')
      t.notMatch(listed.text, /msv_|hash/, 'never shows a key or its hash')
      const one = await op.req('GET', `/v2/admin/keys/${member.id}`)
      t.same([one.json.project, one.json.roles], [pa, ['member']])
      t.equal((await op.req('GET', `/v2/admin/keys/${revoked.id}`)).status, 404)
      t.equal((await op.req('DELETE', `/v2/admin/keys/${revoked.id}`)).status, 404, 'revoking twice: 404')
      for (const body of [{}, { project: '' }, { project: 'x', roles: ['bad role'] }, { project: 'x', extra: 1 }, { project: 'x', ttl: 0 }, []]) {
        const r = await op.req('POST', '/v2/admin/keys', { body })
        t.equal(r.status, 400, `create ${JSON.stringify(body)} → 400`)
        t.type(r.json.description, 'string')
      }
      t.equal((await as(p.base, member.key).req('POST', '/v2/admin/keys', { body: { project: pa, roles: ['admin'] } })).status, 403, 'a member cannot mint keys')
      // An admin key is project-bound like any other.
      const made = await as(p.base, admin.key).req('POST', '/v2/admin/keys', { body: { project: pb } })
      t.equal(made.status, 201, 'an admin key may')
      t.match(made.json.key, /^msv_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/)
    })

    t.test('a key revoked on one proxy is refused by another sharing the catalog', async (t) => {
      const other = await startProxy(t, b, { auth: { strategy: 'keys', keyCacheMs: 200 } })
      const k = await createKey(p.base, { project: pa })
      t.equal((await as(other.base, k.key).req('GET', '/v2/queues')).status, 200, 'the other proxy sees a key made here')
      t.equal((await as(p.base, OPERATOR, 'ops').req('DELETE', `/v2/admin/keys/${k.id}`)).status, 204)
      t.equal((await as(p.base, k.key).req('GET', '/v2/queues')).status, 401, 'refused at once where it was revoked')
      await waitFor(async () => (await as(other.base, k.key).req('GET', '/v2/queues')).status === 401, { what: 'the other proxy to refuse' })
      t.pass('refused by the other proxy once its cache lapsed')
    })
  })
}
