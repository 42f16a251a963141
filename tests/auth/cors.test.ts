/**
 * CORS (proxy/cors.ts; docs/auth.md, "CORS"), as oslo.middleware's CORS with Zaqar's defaults:
 * preflights answered before authentication, headers on allowed origins only, and nothing at all
 * when no origin is configured. On the embedded SQLite store and on a Redis pool.
 */
import t from 'tap'
import { zaqarClient } from '../helpers/http.js'
import { backend, startProxy } from './harness.js'

const APP = 'https://app.example.com'

for (const store of ['sqlite', 'redis'] as const) {
  t.test(`CORS on ${store}`, async (t) => {
    const b = await backend(t, store)

    t.test('off by default', async (t) => {
      const p = await startProxy(t, b)
      const c = zaqarClient(p.base)
      const pre = await c.req('OPTIONS', '/v2/queues', { headers: { Origin: APP, 'Access-Control-Request-Method': 'GET' } })
      t.equal(pre.status, 405, 'OPTIONS is not a route')
      const r = await c.req('GET', '/v2/queues', { headers: { Origin: APP } })
      t.equal(r.status, 200)
      t.equal(r.headers.get('access-control-allow-origin'), null, 'no CORS header')
    })

    t.test('allowed origins, with strategy keys', async (t) => {
      const p = await startProxy(t, b, { adminToken: 'op', auth: { strategy: 'keys' }, cors: { allowedOrigins: [APP] } })
      const c = zaqarClient(p.base)
      const preflight = (headers: Record<string, string>) => c.req('OPTIONS', '/v2/queues/q/messages', { headers: { 'X-Project-ID': null, 'Client-ID': null, ...headers } })
      const ok = await preflight({ Origin: APP, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'X-Auth-Token, Client-ID, X-Project-ID, Content-Type' })
      t.equal(ok.status, 200, 'a preflight needs no credential')
      t.equal(ok.headers.get('access-control-allow-origin'), APP)
      t.equal(ok.headers.get('vary'), 'Origin')
      t.equal(ok.headers.get('access-control-allow-credentials'), 'true')
      t.equal(ok.headers.get('access-control-max-age'), '3600')
      t.equal(ok.headers.get('access-control-allow-methods'), 'POST')
      t.equal(ok.headers.get('access-control-allow-headers'), 'X-Auth-Token,Client-ID,X-Project-ID,Content-Type')
      for (const [what, headers] of [
        ['another origin', { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'GET' }],
        ['no requested method', { Origin: APP }],
        ['a method not allowed', { Origin: APP, 'Access-Control-Request-Method': 'TRACE' }],
        ['a header not allowed', { Origin: APP, 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'X-Evil' }],
        ['no Origin', { 'Access-Control-Request-Method': 'GET' }],
      ] as const) {
        const r = await preflight(headers)
        t.equal(r.status, 200, `${what}: still 200 (as oslo)`)
        t.equal(r.headers.get('access-control-allow-origin'), null, `${what}: no CORS header`)
      }
      // Actual requests: the headers on success and on errors alike, for allowed origins only.
      const key = (await c.req('POST', '/v2/admin/keys', { body: { project: c.project }, headers: { 'X-Auth-Token': 'op' } })).json.key as string
      const good = await c.req('GET', '/v2/queues', { headers: { Origin: APP, 'X-Auth-Token': key } })
      t.equal(good.status, 200)
      t.equal(good.headers.get('access-control-allow-origin'), APP)
      t.equal(good.headers.get('access-control-expose-headers'), 'X-Auth-Token,X-Subject-Token,X-Service-Token,X-OpenStack-Request-ID')
      const unauth = await c.req('GET', '/v2/queues', { headers: { Origin: APP } })
      t.equal(unauth.status, 401)
      t.equal(unauth.headers.get('access-control-allow-origin'), APP, 'a 401 carries them too (the browser can read the error)')
      const other = await c.req('GET', '/v2/queues', { headers: { Origin: 'https://evil.example', 'X-Auth-Token': key } })
      t.equal(other.headers.get('access-control-allow-origin'), null, 'another origin: none')
    })

    t.test('wildcard, no credentials', async (t) => {
      const p = await startProxy(t, b, { cors: { allowedOrigins: ['*'], allowCredentials: false, maxAge: 0 } })
      const c = zaqarClient(p.base)
      const r = await c.req('OPTIONS', '/v2/queues', { headers: { Origin: 'https://any.example', 'Access-Control-Request-Method': 'PUT' } })
      t.equal(r.headers.get('access-control-allow-origin'), '*')
      t.equal(r.headers.get('access-control-allow-credentials'), null)
      t.equal(r.headers.get('access-control-max-age'), null)
      t.equal((await c.req('GET', '/v2/queues', { headers: { Origin: 'https://any.example' } })).headers.get('access-control-allow-origin'), '*')
    })
  })
}
