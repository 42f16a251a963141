/**
 * /metrics can leave the tenants' port: served on `metricsPort` (bound to `metricsBind`) and
 * refused on the API port with `metricsOnApiPort: false`. The aggregated page (proxy + every
 * worker over RPC) is reused for `metricsCacheMs`, so scrapers cannot make the proxy collect it
 * over and over.
 */
import t from 'tap'
import { freePort, startMissive } from '../helpers/index.js'
import { zaqarClient } from '../helpers/http.js'
import { isErrorBody } from './raw.js'
import { onBothStores } from './stores.js'

const scrape = async (port: number): Promise<{ status: number; text: string }> => {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`)
  return { status: r.status, text: await r.text() }
}

const port = await freePort()
void onBothStores(
  t,
  'metrics on the admin port only, cached',
  async (t, m) => {
    const api = await fetch(`${m.baseUrl}/metrics`)
    t.equal(api.status, 404, 'not on the API port')
    t.ok(isErrorBody(await api.json()))
    const first = await scrape(port)
    t.equal(first.status, 200)
    t.match(first.text, /missive_http_requests_total/)
    t.match(first.text, /process="worker-0"/, "the workers' part of the page is there")
    const c = zaqarClient(m.baseUrl)
    for (let i = 0; i < 5; i++) t.equal((await c.req('GET', '/v2/queues')).status, 200)
    const second = await scrape(port)
    t.equal(second.text, first.text, 'within metricsCacheMs the same collection is served')
  },
  { config: { metricsPort: port, metricsBind: '127.0.0.1', metricsOnApiPort: false, metricsCacheMs: 600_000 } },
)

t.test('metricsCacheMs 0: every scrape collects', async (t) => {
  const p = await freePort()
  const m = await startMissive(t, { config: { metricsPort: p, metricsCacheMs: 0 } })
  const first = await scrape(p)
  const c = zaqarClient(m.baseUrl)
  for (let i = 0; i < 5; i++) t.equal((await c.req('GET', '/v2/queues')).status, 200)
  const second = await scrape(p)
  t.not(second.text, first.text, 'the requests in between show')
  t.equal((await fetch(`${m.baseUrl}/metrics`)).status, 200, 'the API port serves /metrics by default')
})
