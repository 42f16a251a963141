// Request processing order and common headers (docs/api.md; zaqar/transport/wsgi/v2_0/), routing errors, request ids.
import t from 'tap'
import { createConnection } from 'node:net'
import { startHarness } from './harness.js'

t.test('versions and home documents', async (t) => {
  const h = await startHarness(t)
  const root = await h.req('GET', '/', { headers: { 'Client-ID': null, 'X-Project-ID': null } })
  t.equal(root.status, 300)
  t.same(
    root.json.versions.map((v: { id: string }) => v.id),
    ['1', '1.1', '2'],
  )
  const home = await h.req('GET', '/v2/')
  t.equal(home.status, 200)
  t.equal(home.headers.get('content-type'), 'application/json-home')
  t.equal(home.headers.get('cache-control'), 'max-age=86400')
  t.equal(home.json.resources['rel/queue']['href-template'], '/v2/queues/{queue_name}')
  t.same(home.json.resources['rel/queue'].hints.allow, ['GET', 'PUT', 'DELETE', 'PATCH'])
  const v11 = await h.req('GET', '/v1.1/')
  t.same(v11.json.resources['rel/queue'].hints.allow, ['PUT', 'DELETE'])
  t.notOk(v11.json.resources['rel/message_get'], 'v1.1 has no message_get rel')
  t.notOk(home.json.resources['rel/pools'], 'no admin rels without an admin token')
  const admin = await startHarness(t, { adminToken: 'x' })
  const adminHome = await admin.req('GET', '/v2/')
  t.equal(adminHome.json.resources['rel/pools']['href-template'], '/v2/pools{?detailed,limit,marker}')
  t.equal(adminHome.json.resources['rel/flavor']['href-template'], '/v2/flavors/{flavor_name}')
  t.equal(adminHome.json.resources['rel/health'].href, '/v2/health')
  t.ok(String(v11.json.resources['rel/messages']['href-template']).startsWith('/v1.1/'))
})

t.test('unknown paths and methods', async (t) => {
  const h = await startHarness(t)
  const nf = await h.req('GET', '/v2/nothing/here')
  t.equal(nf.status, 404)
  t.same(nf.json, { title: '404 Not Found', description: 'No resource matches this path.' })
  t.equal((await h.req('GET', '/v3/queues')).status, 404)
  const head = await h.req('HEAD', '/v2/queues/q1')
  t.equal(head.status, 405)
  t.match(head.headers.get('allow'), /GET/)
  const post = await h.req('POST', '/v2/queues/q1')
  t.equal(post.status, 405)
  t.equal(post.json.title, '405 Method Not Allowed')
  t.equal((await h.req('PATCH', '/v1.1/queues/q1', { raw: '[]' })).status, 405, 'v1.1 has no queue PATCH')
  t.equal((await h.req('POST', '/v1.1/queues/q1/purge')).status, 404, 'v1.1 has no purge')
})

t.test('Client-ID', async (t) => {
  const h = await startHarness(t)
  const missing = await h.req('GET', '/v2/queues', { headers: { 'Client-ID': null } })
  t.equal(missing.status, 400)
  t.same(missing.json, { title: 'Missing header value', description: 'The "Client-ID" header is required.' })
  for (const bad of ['', 'not-a-uuid', '1234', 'g1234567-1234-1234-1234-123456789012']) {
    const r = await h.req('GET', '/v2/queues', { headers: { 'Client-ID': bad } })
    t.equal(r.status, 400, `"${bad}" is refused`)
    t.same(r.json, { title: 'Wrong UUID value', description: 'Malformed hexadecimal UUID.' })
  }
  for (const ok of [
    '3381af92-2b9e-11e3-b191-71861300734c',
    '3381AF922B9E11E3B19171861300734C',
    '{3381af92-2b9e-11e3-b191-71861300734c}',
    'urn:uuid:3381af92-2b9e-11e3-b191-71861300734c',
  ]) {
    t.equal((await h.req('GET', '/v2/queues', { headers: { 'Client-ID': ok } })).status, 200, `"${ok}" is accepted`)
  }
  t.equal((await h.req('GET', '/v2/ping', { headers: { 'Client-ID': null } })).status, 400, 'ping needs it too')
  t.equal((await h.req('GET', '/v2/', { headers: { 'Client-ID': null } })).status, 400, 'home needs it too')
})

t.test('Client-ID length mode', async (t) => {
  const h = await startHarness(t, { limits: { client_id_uuid_safe: 'off' } })
  const short = await h.req('GET', '/v2/queues', { headers: { 'Client-ID': 'short' } })
  t.equal(short.status, 400)
  t.same(short.json, { title: 'Length of client id must be at least 10 and no greater than 36.' })
  t.equal((await h.req('GET', '/v2/queues', { headers: { 'Client-ID': 'any-client-name' } })).status, 200)
})

t.test('X-Project-ID', async (t) => {
  const h = await startHarness(t)
  const missing = await h.req('GET', '/v2/queues', { headers: { 'X-Project-ID': null } })
  t.equal(missing.status, 400)
  t.same(missing.json, { title: 'Project-Id Missing', description: 'The header X-PROJECT-ID was missing' })
  const empty = await h.req('GET', '/v2/queues', { headers: { 'X-Project-ID': '' } })
  t.equal(empty.status, 400)
  t.equal(empty.json.title, 'Empty project header not allowed')
  const long = await h.req('PUT', '/v2/queues/q', { headers: { 'X-Project-ID': 'p'.repeat(257) } })
  t.equal(long.status, 400)
  t.equal(long.json.title, 'Invalid queue identification')
  t.equal((await h.req('GET', '/v2/queues', { headers: { 'X-Project-ID': 'p'.repeat(257) } })).status, 200, 'length only checked on queue routes')
})

t.test('queue names', async (t) => {
  const h = await startHarness(t)
  for (const ok of ['a', 'a.b', 'a-b', 'A_b', 'x'.repeat(64)]) t.equal((await h.req('PUT', `/v2/queues/${ok}`)).status, 201, ok)
  for (const bad of ['x'.repeat(65), 'a$b', 'caf%C3%A9', 'a%2Fb', 'a%20b']) {
    const r = await h.req('PUT', `/v2/queues/${bad}`)
    t.equal(r.status, 400, bad)
    t.same(r.json, {
      title: 'Invalid queue identification',
      description: 'The format of the submitted queue name or project id is not valid.',
    })
  }
})

t.test('Content-Type and Accept', async (t) => {
  const h = await startHarness(t)
  const form = await h.req('POST', '/v2/queues/q/messages', {
    raw: 'a=b',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
  })
  t.equal(form.status, 400)
  t.equal(form.json.title, 'Invalid Content-Type')
  const xml = await h.req('GET', '/v2/queues', { headers: { Accept: 'application/xml' } })
  t.equal(xml.status, 406)
  for (const ok of ['*/*', 'application/json', 'application/*', 'text/html, application/json;q=0.5']) {
    t.equal((await h.req('GET', '/v2/queues', { headers: { Accept: ok } })).status, 200, ok)
  }
  t.equal((await h.req('GET', '/v2/queues', { headers: { Accept: 'application/json;q=0' } })).status, 406)
})

t.test('request ids', async (t) => {
  const h = await startHarness(t)
  const gen = await h.req('GET', '/v2/queues')
  t.match(gen.headers.get('x-openstack-request-id'), /^req-[0-9a-f-]{36}$/)
  const mine = 'req-3381af92-2b9e-11e3-b191-71861300734c'
  t.equal((await h.req('GET', '/v2/queues', { headers: { 'X-Openstack-Request-Id': mine } })).headers.get('x-openstack-request-id'), mine)
  const bad = await h.req('GET', '/v2/queues', { headers: { 'X-Openstack-Request-Id': 'evil\\nlog-line' } })
  t.not(bad.headers.get('x-openstack-request-id'), 'evil\\nlog-line')
  t.match(bad.headers.get('x-openstack-request-id'), /^req-/)
  t.match((await h.req('GET', '/v2/nothing')).headers.get('x-openstack-request-id'), /^req-/, 'errors carry one too')
})

t.test('ping and health', async (t) => {
  const h = await startHarness(t, { adminToken: 'sekret' })
  t.equal((await h.req('GET', '/v2/ping')).status, 204)
  t.equal((await h.req('HEAD', '/v2/ping')).status, 204)
  const denied = await h.req('GET', '/v2/health')
  t.equal(denied.status, 403)
  t.same(denied.json, { title: 'Not authorized', description: 'You are not authorized to complete this action.' })
  t.equal((await h.req('GET', '/v2/health', { headers: { 'X-Roles': 'admin' } })).status, 403, 'X-Roles is never trusted')
  t.equal((await h.req('GET', '/v2/health', { headers: { 'X-Auth-Token': 'wrong' } })).status, 403)
  const ok = await h.req('GET', '/v2/health', { headers: { 'X-Auth-Token': 'sekret' } })
  t.equal(ok.status, 200)
  t.equal(ok.json.catalog_reachable, true)
  t.equal(ok.json.default.storage_reachable, true)
  t.same(Object.keys(ok.json.default.operation_status).sort(), [
    'bulk_delete_messages',
    'claim_messages',
    'create_queue',
    'delete_claim',
    'delete_messages',
    'delete_queue',
    'list_messages',
    'post_messages',
  ])
  for (const s of Object.values(ok.json.default.operation_status) as { succeeded: boolean }[]) t.equal(s.succeeded, true)
  t.same((await h.req('GET', '/v2/queues')).json.queues, [], 'the probe leaves no queue behind')
})

t.test('keep-alive connections survive empty replies (204, HEAD)', async (t) => {
  const h = await startHarness(t)
  const hdr = `Host: x\r\nClient-ID: ${h.clientId}\r\nX-Project-ID: ${h.project}\r\n`
  const requests = [
    `PUT /v2/queues/ka HTTP/1.1\r\n${hdr}\r\n`,
    `DELETE /v2/queues/ka HTTP/1.1\r\n${hdr}\r\n`,
    `HEAD /v2/ping HTTP/1.1\r\n${hdr}\r\n`,
    `GET / HTTP/1.1\r\n${hdr}\r\n`,
  ]
  const url = new URL(h.base)
  const sock = createConnection({ host: url.hostname, port: Number(url.port) })
  t.teardown(() => sock.destroy())
  let data = ''
  let closed = false
  sock.on('data', (c) => (data += c.toString()))
  sock.on('close', () => (closed = true))
  // One request at a time (uWS does not support pipelining behind an asynchronous reply).
  for (const [i, r] of requests.entries()) {
    sock.write(r)
    const deadline = Date.now() + 3000
    while ([...data.matchAll(/HTTP\/1\.1 \d+/g)].length <= i && !closed && Date.now() < deadline) await new Promise((res) => setTimeout(res, 5))
  }
  const statuses = [...data.matchAll(/HTTP\/1\.1 (\d+)/g)].map((m) => Number(m[1]))
  t.same(statuses, [201, 204, 204, 300], 'four replies on one connection')
  t.notOk(closed, 'the connection is still open')
  t.notMatch(data, /Content-Length: 9\d{10,}/, 'no bogus Content-Length')
})
