// Claims over HTTP: create, get, renew, release (docs/api.md; zaqar/transport/wsgi/v2_0/claims.py).
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { rawRequest, startHarness, type Harness } from './harness.js'

const fill = (h: Harness, q: string, n: number) =>
  h.req('POST', `/v2/queues/${q}/messages`, { body: { messages: Array.from({ length: n }, (_, i) => ({ body: i, ttl: 60 })) } })

const claimId = (r: { headers: Headers }): string => r.headers.get('location')!.split('/').pop()!

t.test('create: shape, limits, defaults, 204 when nothing to claim', async (t) => {
  const h = await startHarness(t)
  await fill(h, 'c1', 15)
  const c = await h.req('POST', '/v2/queues/c1/claims', { body: { ttl: 100, grace: 60 } })
  t.equal(c.status, 201)
  t.match(c.headers.get('location'), /^\/v2\/queues\/c1\/claims\/[0-9a-f-]{36}$/)
  t.equal(c.json.messages.length, 10, 'default limit 10')
  t.same(
    c.json.messages.map((m: { body: number }) => m.body),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    'oldest first',
  )
  t.equal(c.json.messages[0].href, `/v2/queues/c1/messages/${c.json.messages[0].id}?claim_id=${claimId(c)}`)
  t.equal(c.json.messages[0].ttl, 160, 'a message expiring before the claim gets ttl + grace')
  // Written by a template (proxy/api/context.ts): JSON.stringify's text, byte for byte, keys in Zaqar's order.
  t.equal(c.text, JSON.stringify(c.json), 'compact JSON, as JSON.stringify writes it')
  t.same(Object.keys(c.json.messages[0]), ['id', 'href', 'ttl', 'age', 'body'])
  const got = await h.req('GET', `/v2/queues/c1/claims/${claimId(c)}`)
  t.equal(got.text, JSON.stringify(got.json), 'a claim read back too')
  const listed = await h.req('GET', '/v2/queues/c1/messages?include_claimed=true&echo=true&limit=3')
  t.equal(listed.text, JSON.stringify(listed.json), 'and a listing')
  const rest = await h.req('POST', '/v2/queues/c1/claims?limit=20')
  t.equal(rest.json.messages.length, 5, 'best effort')
  t.equal((await h.req('POST', '/v2/queues/c1/claims')).status, 204, 'all claimed')
  t.equal((await h.req('POST', '/v2/queues/nope/claims')).status, 204, 'missing queue')
  const cases: [string, string | undefined, number, string][] = [
    ['?limit=0', undefined, 400, 'Limit must be at least 1 and may not be greater than 20.'],
    ['?limit=21', undefined, 400, 'Limit must be at least 1 and may not be greater than 20.'],
    ['', '{"ttl":59}', 400, 'The TTL for a claim may not exceed 43200 seconds, and must be at least 60 seconds long.'],
    ['', '{"ttl":43201}', 400, 'The TTL for a claim may not exceed 43200 seconds, and must be at least 60 seconds long.'],
    ['', '{"grace":59}', 400, 'The grace for a claim may not exceed 43200 seconds, and must be at least 60 seconds long.'],
    ['', '{"ttl":"100"}', 400, 'The value of the "ttl" field must be a int.'],
    ['', '{"ttl":100.5}', 400, 'The value of the "ttl" field must be a int.'],
    ['', '[1]', 400, 'Document type not supported.'],
    ['', '{"ttl":', 400, 'Request body could not be parsed.'],
  ]
  for (const [qs, raw, status, description] of cases) {
    const r = await h.req('POST', `/v2/queues/c1/claims${qs}`, raw === undefined ? {} : { raw })
    t.equal(r.status, status, `${qs} ${raw}`)
    t.equal(r.json?.description, description, `${qs} ${raw}`)
  }
  t.equal((await h.req('POST', '/v2/queues/c1/claims?limit=abc')).json.title, 'Invalid parameter')
})

t.test('a client can claim its own messages; claims are disjoint', async (t) => {
  const h = await startHarness(t)
  await fill(h, 'c2', 40)
  const claims = await Promise.all(Array.from({ length: 8 }, () => h.req('POST', '/v2/queues/c2/claims?limit=5')))
  const seen = new Set<string>()
  for (const c of claims) {
    t.equal(c.status, 201)
    for (const m of c.json.messages) {
      t.notOk(seen.has(m.id), 'never claimed twice')
      seen.add(m.id)
    }
  }
  t.equal(seen.size, 40)
})

t.test('get, renew, release', async (t) => {
  const h = await startHarness(t)
  await fill(h, 'c3', 3)
  const c = await h.req('POST', '/v2/queues/c3/claims?limit=2', { body: { ttl: 120 } })
  const id = claimId(c)
  const got = await h.req('GET', `/v2/queues/c3/claims/${id}`)
  t.equal(got.status, 200)
  t.match(got.json, { ttl: 120, age: Number, href: `/v2/queues/c3/claims/${id}` })
  t.equal(got.json.messages.length, 2)
  t.equal(got.json.messages[0].href, `/v2/queues/c3/messages/${got.json.messages[0].id}?claim_id=${id}`)
  t.equal((await h.req('PATCH', `/v2/queues/c3/claims/${id}`, { body: { ttl: 300, grace: 60 } })).status, 204)
  t.equal((await h.req('GET', `/v2/queues/c3/claims/${id}`)).json.ttl, 300)
  t.equal((await h.req('GET', `/v2/queues/c3/messages/${got.json.messages[0].id}`)).json.ttl, 360, 'renew extends messages')
  const noBody = await rawRequest(
    h.base,
    `PATCH /v2/queues/c3/claims/${id} HTTP/1.1\r\nHost: x\r\nClient-ID: ${h.clientId}\r\nX-Project-ID: ${h.project}\r\n\r\n`,
  )
  t.equal(noBody.status, 400)
  t.equal(noBody.json.description, 'Request body can not be empty')
  t.equal((await h.req('PATCH', `/v2/queues/c3/claims/${id}`, { raw: '' })).json.description, 'Request body could not be parsed.')
  t.equal((await h.req('PATCH', `/v2/queues/c3/claims/${id}`, { body: { ttl: 10 } })).status, 400)
  t.equal((await h.req('PATCH', `/v2/queues/c3/claims/${randomUUID()}`, { body: { ttl: 100 } })).status, 404)
  t.equal((await h.req('DELETE', `/v2/queues/c3/claims/${id}`)).status, 204)
  t.equal((await h.req('GET', `/v2/queues/c3/claims/${id}`)).status, 404, 'released')
  t.equal((await h.req('DELETE', `/v2/queues/c3/claims/${id}`)).status, 204, 'release is idempotent')
  const again = await h.req('POST', '/v2/queues/c3/claims?limit=5')
  t.equal(again.json.messages.length, 3, 'released messages are claimable at once')
  const miss = await h.req('GET', `/v2/queues/c3/claims/${randomUUID()}`)
  t.equal(miss.status, 404)
  t.equal(miss.json.title, 'Not found')
  t.equal((await h.req('GET', '/v2/queues/c3/claims/not-a-uuid')).status, 404)
  t.equal((await h.req('GET', `/v2/queues/other/claims/${claimId(again)}`)).status, 404, 'claim of another queue')
})

t.test('dead-letter queue', async (t) => {
  const h = await startHarness(t)
  await h.req('PUT', '/v2/queues/src', { body: { _max_claim_count: 1, _dead_letter_queue: 'dlq', _dead_letter_queue_messages_ttl: 600 } })
  await h.req('POST', '/v2/queues/src/messages', { body: { messages: [{ body: 'poison' }] } })
  const first = await h.req('POST', '/v2/queues/src/claims')
  t.equal(first.status, 201)
  await h.req('DELETE', `/v2/queues/src/claims/${claimId(first)}`)
  t.equal((await h.req('POST', '/v2/queues/src/claims')).status, 204, 'over the count: moved, not claimed')
  const dlq = await h.req('GET', '/v2/queues/dlq/messages?echo=true')
  t.equal(dlq.json.messages.length, 1)
  t.equal(dlq.json.messages[0].body, 'poison')
  t.equal(dlq.json.messages[0].ttl, 600)
  t.equal((await h.req('GET', '/v2/queues/src/stats')).json.messages.total, 0)
})
