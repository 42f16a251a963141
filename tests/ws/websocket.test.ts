// Zaqar's WebSocket API (docs/websocket.md) with the `ws` client, on both stores: every action in
// Zaqar's response frames, JSON and MessagePack frames, bad frames answered as Zaqar does with
// the socket kept, the bounds (frame size, requests per socket, one project per socket).
import t from 'tap'
import { startRedis, type Teardown } from '../helpers/index.js'
import { startHarness, type Harness } from '../http/harness.js'
import { WsClient } from './client.js'

async function stores(t: Teardown): Promise<[string, string][]> {
  const redis = await startRedis(t, { appendfsync: 'everysec' })
  return [
    ['sqlite', 'sqlite:'],
    ['redis', `${redis.url}/0`],
  ]
}

const wsUrl = (h: Harness, path = '/v2/ws'): string => h.base.replace(/^http/, 'ws') + path

async function open(t: Teardown, h: Harness, project?: string): Promise<WsClient> {
  const c = await WsClient.open(wsUrl(h), project ?? h.project)
  t.teardown(() => c.close())
  return c
}

t.test('every queue, message and claim action, in Zaqar response frames', async (t) => {
  for (const [store, uri] of await stores(t)) {
    t.test(store, async (t) => {
      const h = await startHarness(t, {}, uri)
      const c = await open(t, h)
      const auth = await c.send('authenticate', undefined, { headers: { 'X-Auth-Token': 'x' } })
      t.same(auth.headers, { status: 200 })
      t.same(auth.body, { message: 'Authentified.' })

      const created = await c.send('queue_create', { queue_name: 'wq', metadata: { colour: 'blue' } })
      t.equal(created.headers.status, 201)
      t.equal(created.body, 'Queue wq created.')
      t.same(created.request, { action: 'queue_create', body: { queue_name: 'wq', metadata: { colour: 'blue' } }, headers: { 'Client-ID': c.clientId, 'X-Project-ID': c.project }, api: 'v2' })
      t.equal((await c.send('queue_create', { queue_name: 'wq' })).headers.status, 204, 'again: 204')
      t.match((await c.send('queue_get', { queue_name: 'wq' })).body, { colour: 'blue' })
      t.match((await c.send('queue_list', { detailed: true })).body, { queues: [{ name: 'wq', metadata: { colour: 'blue' } }] })

      const big = '1234567890123456789'
      const posted = await c.send('message_post', { queue_name: 'wq', messages: [{ body: { n: 1 }, ttl: 300 }, { body: 'two' }, { body: 3 }] })
      t.equal(posted.headers.status, 201)
      const ids = posted.body.message_ids as string[]
      t.equal(ids.length, 3)
      // An exact big number survives the frame both ways (text frames carry JSON numbers as written).
      c.raw(`{"action":"message_post","headers":{"Client-ID":"${c.clientId}","X-Project-ID":"${c.project}"},"body":{"queue_name":"wq","messages":[{"body":${big}}]}}`)
      await c.until(() => c.answers.length === 7, 'the big post')
      t.equal(c.answers[6]!.headers.status, 201)
      const bigId = c.answers[6]!.body.message_ids[0] as string

      const listed = await c.send('message_list', { queue_name: 'wq', echo: true, limit: 10 })
      t.equal(listed.headers.status, 200)
      t.same(
        listed.body.messages.map((m: { id: string; claim_id: null }) => [m.id, m.claim_id]),
        [...ids, bigId].map((id) => [id, null]),
      )
      t.same(Object.keys(listed.body.messages[0]).sort(), ['age', 'body', 'claim_id', 'id', 'ttl'], "Zaqar's message shape")
      t.same(listed.body.messages[0].body, { n: 1 })
      await c.send('message_get', { queue_name: 'wq', message_id: bigId })
      t.match(c.texts[c.texts.length - 1], `"body":${big}}`, 'the big number read back exactly')
      const one = await c.send('message_get', { queue_name: 'wq', message_id: ids[1] })
      t.same(one.body, { messages: { id: ids[1], claim_id: null, ttl: 3600, age: one.body.messages.age, body: 'two' } }, 'message_get: under "messages"')
      const many = await c.send('message_get_many', { queue_name: 'wq', message_ids: [ids[0], ids[2]] })
      t.same(many.body.messages.map((m: { id: string }) => m.id), [ids[0], ids[2]])

      const claim = await c.send('claim_create', { queue_name: 'wq', limit: 2, ttl: 120, grace: 60 })
      t.equal(claim.headers.status, 201)
      const claimId = claim.body.claim_id as string
      t.match(claimId, /^[0-9a-f-]{36}$/)
      t.same(claim.body.messages.map((m: { id: string; claim_id: string }) => [m.id, m.claim_id]), [[ids[0], claimId], [ids[1], claimId]])
      const got = await c.send('claim_get', { queue_name: 'wq', claim_id: claimId })
      t.equal(got.headers.status, 200)
      t.match(got.body, { ttl: 120, messages: [{ id: ids[0] }, { id: ids[1] }] })
      const upd = await c.send('claim_update', { queue_name: 'wq', claim_id: claimId, ttl: 200, grace: 60 })
      t.same([upd.headers.status, upd.body], [204, `Claim ${claimId} updated.`])
      t.equal((await c.send('claim_get', { queue_name: 'wq', claim_id: claimId })).body.ttl, 200)
      const noClaim = await c.send('message_delete', { queue_name: 'wq', message_id: ids[0] })
      t.equal(noClaim.headers.status, 403, 'a claimed message needs its claim')
      t.equal((await c.send('message_delete', { queue_name: 'wq', message_id: ids[0], claim_id: claimId })).headers.status, 204)
      const released = await c.send('claim_delete', { queue_name: 'wq', claim_id: claimId })
      t.same([released.headers.status, released.body], [204, `Claim ${claimId} deleted.`])
      t.equal((await c.send('claim_get', { queue_name: 'wq', claim_id: claimId })).headers.status, 404)

      const stats = await c.send('queue_get_stats', { queue_name: 'wq' })
      t.match(stats.body, { messages: { total: 3, claimed: 0, free: 3 } })
      t.equal((await c.send('message_delete_many', { queue_name: 'wq', message_ids: [ids[1]] })).headers.status, 204)
      const popped = await c.send('message_delete_many', { queue_name: 'wq', pop: 1 })
      t.equal(popped.headers.status, 200)
      t.same(popped.body.messages.map((m: { id: string }) => m.id), [ids[2]], 'pop takes the oldest')
      const none = await c.send('claim_create', { queue_name: 'empty' })
      t.same([none.headers.status, none.body], [204, { claim_id: null }])
      t.equal((await c.send('queue_purge', { queue_name: 'wq' })).headers.status, 204)
      t.match((await c.send('queue_get_stats', { queue_name: 'wq' })).body, { messages: { total: 0 } })
      t.equal((await c.send('queue_delete', { queue_name: 'wq' })).headers.status, 204)
      t.same((await c.send('queue_list', {})).body, { queues: [] })
    })
  }
})

t.test('the same validation as HTTP, errors as Zaqar error frames; projects stay apart', async (t) => {
  const h = await startHarness(t, { limits: { max_messages_per_claim_or_pop: 5 } })
  const c = await open(t, h)
  const e1 = await c.send('claim_create', { queue_name: 'v', limit: 6 })
  t.same([e1.headers.status, e1.body.error], [400, 'Limit must be at least 1 and may not be greater than 5.'])
  const e2 = await c.send('message_post', { queue_name: 'v', messages: [{ body: 1, ttl: 5 }] })
  t.equal(e2.headers.status, 400)
  t.match(e2.body.error, /TTL for a message/)
  const e3 = await c.send('queue_create', { queue_name: 'bad name!' })
  t.same([e3.headers.status, e3.body.error], [400, 'The format of the submitted queue name or project id is not valid.'])
  const e4 = await c.send('message_list', { queue_name: 'v' }, { headers: { 'X-Project-ID': c.project } })
  t.same([e4.headers.status, e4.body.error], [400, 'The "Client-ID" header is required.'])
  const e5 = await c.send('message_get', { queue_name: 'v', message_id: 'nope' })
  t.equal(e5.headers.status, 404)

  // Another project's socket sees nothing of ours, and a socket serves one project.
  t.equal((await c.send('message_post', { queue_name: 'mine', messages: [{ body: 'secret' }] })).headers.status, 201)
  const other = await open(t, h, `p-other-${Date.now()}`)
  t.same((await other.send('message_list', { queue_name: 'mine', echo: true })).body, { messages: [] })
  const sw = await other.send('queue_list', {}, { headers: { 'Client-ID': other.clientId, 'X-Project-ID': c.project } })
  t.same([sw.headers.status, sw.body.error], [400, 'A WebSocket connection serves the project of its first request only; open another connection for another project.'])
})

t.test('bad frames: Zaqar error frames, the socket kept; oversized frames close it', async (t) => {
  const h = await startHarness(t, { wsMaxFrameBytes: 4096 })
  const c = await open(t, h)
  c.raw('{"action": ')
  await c.until(() => c.answers.length === 1, 'an answer to bad JSON')
  t.same(c.answers[0]!.headers, { status: 400 })
  t.match(c.answers[0]!.body.error, /^Can't decode text \(JSON\) request\. /)
  t.same(c.answers[0]!.request, { action: null, body: {}, headers: null, api: 'v2' })
  c.raw(new Uint8Array([0xc1]))
  await c.until(() => c.answers.length === 2, 'an answer to bad MessagePack')
  t.ok(c.answers[1]!.binary, 'answered in a binary frame')
  t.match(c.answers[1]!.body.error, /^Can't decode binary \(MessagePack\) request\. /)
  c.raw('[1, 2]')
  await c.until(() => c.answers.length === 3, 'an answer to a list')
  t.same(c.answers[2]!.body, { error: 'Unexpected body type. Expected dict or dict like.' })
  t.same((await c.send('queue_frobnicate', { queue_name: 'x' })).body, { error: 'queue_frobnicate is not a valid action' })
  for (const name of ['toString', '__proto__', 'constructor', 'hasOwnProperty']) {
    t.same((await c.send(name, { queue_name: 'x' })).body, { error: `${name} is not a valid action` }, `${name} is not an action`)
  }
  const odd = await c.send('message_list', { queue_name: 'x', limit: { deep: [1, { n: 2 }] }, marker: [1, 2] })
  t.equal(odd.headers.status, 400, 'odd parameter values: a 400, not a crash')
  const big = await c.send('message_list', { queue_name: 'x', limit: { n: 2n ** 62n }, marker: [{ m: 2n ** 62n }] }, { binary: true })
  t.equal(big.headers.status, 400, 'int64 inside odd parameter values: a 400')
  t.same((await c.send('queue_get', {})).body, { error: 'Schema validation failed.' }, 'a missing queue_name')
  t.same((await c.send('queue_get', { queue_name: 5 })).body, { error: 'Schema validation failed.' })
  t.same((await c.send('queue_get', 'text')).body, { error: 'Schema validation failed.' }, 'a body that is not an object')
  t.equal((await c.send('queue_create', { queue_name: 'still' })).headers.status, 201, 'the socket still serves')

  c.raw(JSON.stringify({ action: 'message_post', body: { queue_name: 'still', messages: [{ body: 'x'.repeat(5000) }] } }))
  await c.until(() => c.closed !== undefined, 'the close')
  // uWS drops the connection at once, without a close frame: the client sees 1006.
  t.equal(c.closed!.code, 1006, 'a frame over wsMaxFrameBytes closes the socket')
  t.equal((await h.req('GET', '/v2/queues/still/stats')).json.messages.total, 0, 'and nothing of it was stored')
})

t.test('MessagePack frames both ways; answers in the encoding of the request', async (t) => {
  for (const [store, uri] of await stores(t)) {
    t.test(store, async (t) => {
      const h = await startHarness(t, {}, uri)
      const c = await open(t, h)
      const big = 2n ** 60n + 7n
      const posted = await c.send('message_post', { queue_name: 'mp', messages: [{ body: { big, s: 'é' } }] }, { binary: true })
      t.ok(posted.binary)
      t.equal(posted.headers.status, 201)
      const listed = await c.send('message_list', { queue_name: 'mp', echo: true }, { binary: true })
      t.ok(listed.binary)
      t.same(listed.body.messages[0].body, { big, s: 'é' }, 'an int64 body value exact through MessagePack')
      const asText = await c.send('message_list', { queue_name: 'mp', echo: true })
      t.notOk(asText.binary, 'a text request gets a text answer')
      const bad = await c.send('message_post', { queue_name: 'mp', messages: [{ body: new Uint8Array([1]) }] }, { binary: true })
      t.equal(bad.headers.status, 400, 'binary values refused as over HTTP')
    })
  }
})

t.test('bounds: requests per socket, sockets per project, sockets in all', async (t) => {
  const h = await startHarness(t, { wsMaxInflight: 2, wsMaxSocketsPerProject: 2, wsMaxSockets: 3 })
  const c = await open(t, h)
  // Two long-polling claims hold both request slots of the socket.
  c.post('claim_create', { queue_name: 'slots', wait: 20, limit: 1 })
  c.post('claim_create', { queue_name: 'slots', wait: 20, limit: 1 })
  await c.until(() => h.longPoll.size === 2 || c.answers.length > 0, 'two parked claims')
  t.equal(h.longPoll.size, 2)
  const third = await c.send('queue_get_stats', { queue_name: 'slots' })
  t.same([third.headers.status, third.body.error], [429, 'No more than 2 requests may run at once on one WebSocket connection.'])
  // A post wakes both; the slots are free again.
  t.equal((await h.req('POST', '/v2/queues/slots/messages', { body: { messages: [{ body: 1 }, { body: 2 }] } })).status, 201)
  await c.until(() => c.answers.filter((a) => a.request?.action === 'claim_create').length === 2, 'both claims answered')
  t.same(c.answers.filter((a) => a.request?.action === 'claim_create').map((a) => a.headers.status), [201, 201])
  t.equal((await c.send('queue_get_stats', { queue_name: 'slots' })).headers.status, 200)

  const second = await open(t, h)
  t.equal((await second.send('queue_list', {})).headers.status, 200)
  const over = await open(t, h)
  const refused = await over.send('queue_list', {})
  t.same([refused.headers.status, refused.body.error], [429, 'No more than 2 WebSocket connections per project.'])
  await over.until(() => over.closed !== undefined, 'the close')
  t.equal(over.closed!.code, 1008)

  // Closing a long-polling socket frees its parked claims at once.
  const parked = await open(t, h, `p-parked-${Date.now()}`)
  parked.post('claim_create', { queue_name: 'gone', wait: 20 })
  await c.until(() => h.longPoll.size === 1, 'one parked claim')
  parked.close()
  const until = Date.now() + 5000
  while (h.longPoll.size !== 0 && Date.now() < until) await new Promise((r) => setImmediate(r))
  t.equal(h.longPoll.size, 0, 'nothing left parked')
  await c.until(() => h.server.websocket!.size === 2, 'the closed sockets gone')
  await open(t, h, `p-third-${Date.now()}`)
  t.equal(h.server.websocket!.size, 3, 'sockets counted')
  await t.rejects(WsClient.open(wsUrl(h)), 'the upgrade beyond wsMaxSockets is refused')
})

t.test('the path is configurable; empty turns the WebSocket API off', async (t) => {
  const h = await startHarness(t, { wsPath: '/custom/ws' })
  const c = await WsClient.open(wsUrl(h, '/custom/ws'), h.project)
  t.teardown(() => c.close())
  t.equal((await c.send('queue_list', {})).headers.status, 200)
  await t.rejects(WsClient.open(wsUrl(h)), 'nothing at the default path')
  const plain = await h.req('GET', '/custom/ws')
  t.equal(plain.status, 404, 'a plain GET of the WebSocket path (no upgrade) is answered by the HTTP API')
  t.match(plain.json, { title: '404 Not Found' })
  const off = await startHarness(t, { wsPath: '' })
  await t.rejects(WsClient.open(wsUrl(off)), 'off')
  t.equal(off.server.websocket, undefined)
  t.equal((await off.req('GET', '/v2/ws')).status, 404, 'a plain GET of the path is the HTTP API (404)')
})
