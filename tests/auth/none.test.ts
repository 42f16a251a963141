/**
 * Strategy `none` (the embedded default): no credential is asked for on any route, the operator's
 * `adminToken` still guards the admin routes, and a proxy listening beyond loopback warns at start.
 */
import t from 'tap'
import { noneWarning } from '../../proxy/auth/index.js'
import { parseConfig } from '../../shared/config.js'
import { startMissive, waitFor } from '../helpers/index.js'
import { zaqarClient } from '../helpers/http.js'
import { backend, startProxy } from './harness.js'
import { everyRoute } from './routes.js'

for (const store of ['sqlite', 'redis'] as const) {
  t.test(`none on ${store}: every route, with and without credentials`, async (t) => {
    const b = await backend(t, store)
    const p = await startProxy(t, b, { adminToken: 'operator' })
    const c = zaqarClient(p.base)
    for (const r of everyRoute()) {
      for (const [what, token] of [['no token', undefined], ['a bad token', 'bogus'], ['a key-shaped token', `msv_${'0'.repeat(16)}_${'A'.repeat(43)}`]] as const) {
        const res = await c.req(r.method, r.path, { headers: token === undefined ? {} : { 'X-Auth-Token': token } })
        if (r.admin) t.equal(res.status, 403, `${r.label}: ${what} → 403 (admin)`)
        else t.ok(res.status !== 401 && res.status !== 403, `${r.label}: ${what} passes (${res.status})`)
      }
      const op = await c.req(r.method, r.path, { headers: { 'X-Auth-Token': 'operator' } })
      t.ok(op.status !== 401 && op.status !== 403, `${r.label}: the admin token passes (${op.status})`)
      const noProject = await c.req(r.method, r.path, { headers: { 'X-Project-ID': null } })
      if (r.method !== 'HEAD') t.equal(noProject.status, 400, `${r.label}: X-Project-ID is still required`)
    }
    t.equal((await c.req('GET', '/v2/admin/keys', { headers: { 'X-Auth-Token': 'operator' } })).status, 404, 'no keys API under none')
  })
}

t.test('the warning for none beyond loopback', async (t) => {
  t.equal(noneWarning(parseConfig({})), null, 'default bind 127.0.0.1: quiet')
  t.equal(noneWarning(parseConfig({ bind: '::1' })), null, '::1: quiet')
  t.match(noneWarning(parseConfig({ bind: '0.0.0.0' })), /auth.strategy is "none".*0\.0\.0\.0/)
  t.match(noneWarning(parseConfig({ adminPort: 9000, adminBind: '10.0.0.5' })), /10\.0\.0\.5/, 'an exposed admin listener too')
  t.equal(noneWarning(parseConfig({ bind: '0.0.0.0', auth: { strategy: 'keys' } })), null, 'keys: quiet')

  const exposed = await startMissive(t, { env: { MISSIVE_BIND: '0.0.0.0' } })
  await waitFor(() => /auth\.strategy/.test(exposed.output()), { what: 'the warning' }).catch(() => t.comment(exposed.output()))
  t.match(exposed.output(), /auth\.strategy is \\?"none\\?" and the proxy listens on 0\.0\.0\.0/, 'logged at start')
  await exposed.stop()
})
