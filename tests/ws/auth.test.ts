// The WebSocket API under authentication (docs/websocket.md, docs/auth.md), strategy `keys`, on
// both stores: frames before `authenticate` are refused (403 `Not authentified.`), a bad token is
// 401 with the socket kept, an authenticated socket acts as its key's project only, and a frame
// may carry its own X-Auth-Token instead.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { zaqarClient } from '../helpers/http.js'
import { backend, startProxy } from '../auth/harness.js'
import { WsClient } from './client.js'

const OPERATOR = 'operator-secret-token'

for (const store of ['sqlite', 'redis'] as const) {
  t.test(`keys on ${store}`, async (t) => {
    const b = await backend(t, store)
    const p = await startProxy(t, b, { adminToken: OPERATOR, auth: { strategy: 'keys' } })
    const project = `pa-${randomUUID()}`
    const admin = zaqarClient(p.base, { project: 'ops' })
    const made = await admin.req('POST', '/v2/admin/keys', { body: { project }, headers: { 'X-Auth-Token': OPERATOR } })
    t.equal(made.status, 201)
    const key = made.json.key as string

    const c = await WsClient.open(`${p.base.replace(/^http/, 'ws')}/v2/ws`, project)
    t.teardown(() => c.close())
    const early = await c.send('queue_list', {})
    t.same([early.headers.status, early.body], [403, { error: 'Not authentified.' }], 'a frame before authenticate')
    const sub = await c.send('subscription_create', { queue_name: 'q' })
    t.equal(sub.headers.status, 403, 'subscriptions too')
    const bad = await c.send('authenticate', undefined, { headers: { 'X-Auth-Token': `${key}x` } })
    t.same([bad.headers.status, bad.body], [401, { error: 'Authentication failed.' }])
    const good = await c.send('authenticate', undefined, { headers: { 'X-Auth-Token': key } })
    t.same([good.headers.status, good.body], [200, { message: 'Authentified.' }], 'the socket stayed open for another try')

    t.equal((await c.send('queue_create', { queue_name: 'mine' })).headers.status, 201, 'then frames without a token are served')
    const noProject = await c.send('queue_list', {}, { headers: { 'Client-ID': c.clientId } })
    t.same(noProject.body.queues.map((q: { name: string }) => q.name), ['mine'], "no X-Project-ID: the key's project")
    const other = await c.send('queue_list', {}, { headers: { 'Client-ID': c.clientId, 'X-Project-ID': `pb-${randomUUID()}` } })
    t.equal(other.headers.status, 400, 'another project on this socket: refused')

    // A socket that never authenticates may still send a token with each frame.
    const perFrame = await WsClient.open(`${p.base.replace(/^http/, 'ws')}/v2/ws`, project)
    t.teardown(() => perFrame.close())
    const r = await perFrame.send('queue_get_stats', { queue_name: 'mine' }, { headers: { 'Client-ID': perFrame.clientId, 'X-Project-ID': project, 'X-Auth-Token': key } })
    t.equal(r.headers.status, 200)
    const wrong = await perFrame.send('queue_get_stats', { queue_name: 'mine' }, { headers: { 'Client-ID': perFrame.clientId, 'X-Project-ID': project, 'X-Auth-Token': 'nope' } })
    t.equal(wrong.headers.status, 401, 'a bad per-frame token: 401 as over HTTP')
  })
}
