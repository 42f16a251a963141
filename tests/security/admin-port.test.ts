/**
 * `adminPort`: the admin API (pools, flavors, health, pool stats) and /metrics move to their own
 * listener (bound to `adminBind`); the tenants' port answers 404 for them, as for any unknown
 * path, and the admin port serves nothing of the tenants' API. The admin token is still needed.
 */
import t from 'tap'
import { freePort } from '../helpers/index.js'
import { zaqarClient } from '../helpers/http.js'
import { isErrorBody } from './raw.js'
import { onBothStores } from './stores.js'

const TOKEN = 'admin-port-token'
const adminPort = await freePort()

void onBothStores(
  t,
  'admin API on its own port',
  async (t, m) => {
    const admin = zaqarClient(`http://127.0.0.1:${adminPort}`)
    const tenant = zaqarClient(m.baseUrl)
    const auth = { headers: { 'X-Auth-Token': TOKEN } }
    for (const path of ['/v2/pools', '/v2/flavors', '/v2/pools/default', '/v2/admin/pools/default/stats', '/v2/health', '/v1.1/health']) {
      const onApi = await tenant.req('GET', path, auth)
      t.equal(onApi.status, 404, `${path} not on the API port, even with the token`)
      t.ok(isErrorBody(onApi.json), path)
    }
    t.equal((await admin.req('GET', '/v2/pools', auth)).status, 200, 'pools on the admin port')
    t.equal((await admin.req('GET', '/v2/pools/default', auth)).status, 200)
    t.equal((await admin.req('GET', '/v2/flavors', auth)).status, 200)
    t.equal((await admin.req('GET', '/v2/pools')).status, 403, 'the token is still required there')
    t.equal((await fetch(`http://127.0.0.1:${adminPort}/metrics`)).status, 200, '/metrics on the admin port')
    t.equal((await fetch(`${m.baseUrl}/metrics`)).status, 404, 'and not on the API port (metricsOnApiPort: false)')
    t.equal((await admin.req('GET', '/v2/queues')).status, 404, 'no tenant API on the admin port')
    t.equal((await tenant.req('PUT', '/v2/queues/q')).status, 201, 'the tenant API on its port')
    t.equal((await tenant.req('GET', '/v2/queues')).status, 200)
  },
  { config: { adminToken: TOKEN, adminPort, adminBind: '127.0.0.1', metricsOnApiPort: false } },
)
