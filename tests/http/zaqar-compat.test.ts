// Zaqar-exact behaviours a real Zaqar client relies on (issue 10): repeated list parameters,
// claim update's grace, and response header names as falcon writes them. On both stores.
import t from 'tap'
import { startRedis, type Teardown } from '../helpers/index.js'
import { rawRequest, startHarness, type Harness } from './harness.js'

const post = async (h: Harness, q: string, n: number): Promise<string[]> => {
  const r = await h.req('POST', `/v2/queues/${q}/messages`, { body: { messages: Array.from({ length: n }, (_, i) => ({ body: i, ttl: 300 })) } })
  if (r.status !== 201) throw new Error(`post: ${r.status} ${r.text}`)
  return (r.json.resources as string[]).map((href) => href.split('/').pop()!)
}

async function stores(t: Teardown): Promise<[string, string][]> {
  const redis = await startRedis(t, { appendfsync: 'everysec' })
  return [
    ['sqlite', 'sqlite:'],
    ['redis', `${redis.url}/0`],
  ]
}

t.test('list parameters: repeated, comma-separated, and both (falcon get_param_as_list)', async (t) => {
  for (const [store, uri] of await stores(t)) {
    t.test(store, async (t) => {
      const h = await startHarness(t, {}, uri)
      const ids = await post(h, 'rep', 6)
      const bodies = (r: { json: { messages: { body: number }[] } }): number[] => r.json.messages.map((m) => m.body).sort()

      const repeated = await h.req('GET', `/v2/queues/rep/messages?ids=${ids[0]}&ids=${ids[1]}&ids=${ids[2]}`)
      t.equal(repeated.status, 200)
      t.same(bodies(repeated), [0, 1, 2], 'ids=a&ids=b&ids=c gets all three')
      const mixed = await h.req('GET', `/v2/queues/rep/messages?ids=${ids[0]},${ids[1]}&ids=${ids[2]}&ids=,${ids[3]},`)
      t.same(bodies(mixed), [0, 1, 2, 3], 'ids=a,b&ids=c gets all of them, blanks dropped')
      const csv = await h.req('GET', `/v2/queues/rep/messages?ids=${ids[4]},${ids[5]}`)
      t.same(bodies(csv), [4, 5], 'comma-separated still works')
      const tooMany = await h.req('GET', `/v2/queues/rep/messages?${Array.from({ length: 21 }, (_, i) => `ids=${ids[i % 6]}${i}`).join('&')}`)
      t.equal(tooMany.status, 400, 'the limit counts every repeated value')
      t.equal(tooMany.json.description, 'ids parameter should have at least 1 and not greater than 20 values.')

      const del = await h.req('DELETE', `/v2/queues/rep/messages?ids=${ids[0]}&ids=${ids[1]},${ids[2]}`)
      t.equal(del.status, 204)
      const left = await h.req('GET', '/v2/queues/rep/messages?echo=true')
      t.same(
        left.json.messages.map((m: { body: number }) => m.body),
        [3, 4, 5],
        'bulk delete with repeated ids deletes every one',
      )

      // claim_ids, repeated, under message_delete_with_claim_id.
      const strict = await startHarness(t, { limits: { message_delete_with_claim_id: true } }, uri)
      const sids = await post(strict, 'strict', 4)
      const c1 = await strict.req('POST', '/v2/queues/strict/claims?limit=2', { body: { ttl: 60, grace: 60 } })
      const c2 = await strict.req('POST', '/v2/queues/strict/claims?limit=2', { body: { ttl: 60, grace: 60 } })
      const cid = (r: { headers: Headers }): string => r.headers.get('location')!.split('/').pop()!
      const sdel = await strict.req('DELETE', `/v2/queues/strict/messages?ids=${sids.join('&ids=')}&claim_ids=${cid(c1)}&claim_ids=${cid(c2)}`)
      t.equal(sdel.status, 204, 'repeated claim_ids cover messages of both claims')
      t.equal((await strict.req('GET', '/v2/queues/strict/stats')).json.messages.total, 0, 'all four deleted')
    })
  }
})

t.test('claim update validates only ttl; any integer grace succeeds (Zaqar claim_updating)', async (t) => {
  for (const [store, uri] of await stores(t)) {
    t.test(store, async (t) => {
      const h = await startHarness(t, {}, uri)
      await post(h, 'cu', 2)
      const c = await h.req('POST', '/v2/queues/cu/claims?limit=2', { body: { ttl: 60, grace: 60 } })
      const path = c.headers.get('location')!
      for (const grace of [30, 0, -5, 10 ** 9]) {
        const r = await h.req('PATCH', path, { body: { ttl: 120, grace } })
        t.equal(r.status, 204, `grace ${grace} accepted`)
      }
      t.equal((await h.req('GET', path)).json.ttl, 120, 'the claim was renewed')
      const msg = await h.req('GET', `/v2/queues/cu/messages/${c.json.messages[0].id}`)
      t.ok(msg.json.ttl <= 120 + h.config.limits.max_claim_grace, 'a huge grace is clamped to max_claim_grace')
      const badTtl = await h.req('PATCH', path, { body: { ttl: 59, grace: 30 } })
      t.equal(badTtl.status, 400)
      t.equal(badTtl.json.description, 'The TTL for a claim may not exceed 43200 seconds, and must be at least 60 seconds long.')
      const badType = await h.req('PATCH', path, { body: { ttl: 100, grace: 'x' } })
      t.equal(badType.status, 400)
      t.equal(badType.json.description, 'The value of the "grace" field must be a int.')
      const create = await h.req('POST', '/v2/queues/cu/claims', { body: { ttl: 60, grace: 30 } })
      t.equal(create.status, 400, 'create still range-checks grace (Zaqar claim_creation)')
    })
  }
})

/** Header names of a raw response, as sent. */
const names = (head: string): string[] =>
  head
    .split('\r\n')
    .slice(1)
    .map((l) => l.slice(0, l.indexOf(':')))

t.test('response header names are lower-case, as falcon writes them', async (t) => {
  const h = await startHarness(t, { adminToken: 'adm' })
  const hdr = `Host: x\r\nClient-ID: ${h.clientId}\r\nX-Project-ID: ${h.project}\r\n`
  const body = '{"messages":[{"body":1,"ttl":60}]}'
  const cases: [string, string, string[]][] = [
    [`PUT /v2/queues/hq HTTP/1.1\r\n${hdr}Content-Length: 0\r\n\r\n`, '201 queue', ['location']],
    [`POST /v2/queues/hq/messages HTTP/1.1\r\n${hdr}Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`, '201 post', ['location', 'content-type']],
    [`POST /v2/queues/hq/claims HTTP/1.1\r\n${hdr}Content-Length: 0\r\n\r\n`, '201 claim', ['location', 'content-type']],
    [`GET /v2/queues/hq/messages HTTP/1.1\r\n${hdr}\r\n`, '200 list', ['content-type']],
    [`GET /v2/ HTTP/1.1\r\n${hdr}\r\n`, 'home', ['content-type', 'cache-control']],
    [`GET /v2/pools HTTP/1.1\r\n${hdr}X-Auth-Token: adm\r\n\r\n`, 'pool list', ['content-type', 'content-location']],
    [`GET /v2/queues/hq/claims/nope HTTP/1.1\r\n${hdr}\r\n`, '404', ['content-type']],
    [`POST /v2/queues/hq HTTP/1.1\r\n${hdr}Content-Length: 0\r\n\r\n`, '405', ['content-type', 'allow']],
    [`GET /v2/queues HTTP/1.1\r\nHost: x\r\n\r\n`, '400', ['content-type']],
    [`PUT /v2/queues/hq HTTP/1.1\r\n${hdr}Content-Length: 99999999\r\n\r\n`, '400 and close', ['content-type']],
  ]
  for (const [request, what, required] of cases) {
    const r = await rawRequest(h.base, request)
    const sent = names(r.head)
    for (const name of required) t.ok(sent.includes(name), `${what}: "${name}" sent lower-case (got ${sent.join(', ')})`)
    t.ok(sent.includes('x-openstack-request-id'), `${what}: x-openstack-request-id lower-case`)
    // Content-Length, Date and Connection are written by the HTTP layer itself (uWS), as Zaqar's
    // WSGI server writes Date and Server: docs/api.md lists them.
    const ours = sent.filter((n) => !['Content-Length', 'Date', 'Connection', 'uWebSockets'].includes(n))
    t.same(
      ours.filter((n) => n !== n.toLowerCase()),
      [],
      `${what}: every header the service writes is lower-case`,
    )
  }
})

t.test('_enable_encrypt_messages: true is refused with a reason (docs/api.md); false is accepted', async (t) => {
  const h = await startHarness(t)
  const put = await h.req('PUT', '/v2/queues/enc', { body: { _enable_encrypt_messages: true } })
  t.equal(put.status, 400)
  t.match(put.json, { title: String, description: /not supported by this server: message bodies are not encrypted at rest/ })
  t.equal((await h.req('PUT', '/v2/queues/enc', { body: { _enable_encrypt_messages: false } })).status, 201)
  const patch = await h.req('PATCH', '/v2/queues/enc', {
    raw: JSON.stringify([{ op: 'add', path: '/metadata/_enable_encrypt_messages', value: true }]),
    headers: { 'Content-Type': 'application/openstack-messaging-v2.0-json-patch' },
  })
  t.equal(patch.status, 400, 'nor by PATCH')
  t.match(patch.json.description, /not encrypted at rest/)
  t.equal((await h.req('GET', '/v2/queues/enc')).json._enable_encrypt_messages, false)
})
