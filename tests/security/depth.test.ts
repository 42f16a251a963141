/**
 * One nesting limit for the whole request path (shared/json-depth.ts): queue metadata and
 * message bodies nested up to 256 levels are stored and read back through the RPC hop on both
 * stores; deeper documents are a 400. Metadata nested 98–256 levels used to be a 500 (the RPC
 * encoder stopped at 100).
 */
import t from 'tap'
import { randomProject, zaqarClient } from '../helpers/http.js'
import { isErrorBody } from './raw.js'
import { onBothStores } from './stores.js'

/** A JSON document nested exactly `depth` containers deep: {"k":{"k":…{"k":[]}…}}. */
function nested(depth: number): string {
  return '{"k":'.repeat(depth - 1) + '[]' + '}'.repeat(depth - 1)
}

void onBothStores(t, 'JSON depth', async (t, m) => {
  const c = zaqarClient(m.baseUrl, { project: randomProject('depth') })
  for (const depth of [98, 101, 150, 256]) {
    const raw = nested(depth)
    const put = await c.req('PUT', `/v2/queues/d${depth}`, { raw, headers: { 'Content-Type': 'application/json' } })
    t.equal(put.status, 201, `metadata ${depth} levels deep: ${put.text.slice(0, 120)}`)
    const got = await c.req('GET', `/v2/queues/d${depth}`)
    t.equal(got.status, 200)
    t.equal(JSON.stringify(got.json?.k), JSON.stringify(JSON.parse(raw).k), `metadata ${depth} levels read back`)
  }
  const list = await c.req('GET', '/v2/queues?detailed=true')
  t.equal(list.status, 200, 'a detailed listing carries the deepest metadata too')

  const tooDeep = await c.req('PUT', '/v2/queues/d257', { raw: nested(257), headers: { 'Content-Type': 'application/json' } })
  t.equal(tooDeep.status, 400)
  t.ok(isErrorBody(tooDeep.json))
  t.match(tooDeep.json?.description, /deeper than 256/)

  // A message body as deep as the limit allows: {"messages":[{"body": …}]} takes 3 levels.
  const body = nested(253)
  const post = await c.req('POST', '/v2/queues/msgs/messages', { raw: `{"messages":[{"body":${body}}]}`, headers: { 'Content-Type': 'application/json' } })
  t.equal(post.status, 201, post.text.slice(0, 120))
  const claim = await c.req('POST', '/v2/queues/msgs/claims', { body: { ttl: 60, grace: 60 } })
  t.equal(claim.status, 201)
  t.equal(JSON.stringify(claim.json?.messages?.[0]?.body), JSON.stringify(JSON.parse(body)), 'the deep body comes back whole')
})
