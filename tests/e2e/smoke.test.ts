/**
 * End-to-end smoke test: README's "A first session" against the whole service (supervisor →
 * worker → proxy) on a free port, checking `X-Openstack-Request-Id` on every response.
 */
import t from 'tap'
import { startMissive } from '../helpers/index.js'
import { idFromHref, randomProject, zaqarClient, type HttpResp } from '../helpers/http.js'

const REQUEST_ID = /^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

t.test("README's first session against the full service", async (t) => {
  const m = await startMissive(t)
  const c = zaqarClient(m.baseUrl, { project: randomProject('smoke') })
  const q = `/v2/queues/billing`
  const seenIds = new Set<string>()
  const responses: [string, HttpResp][] = []
  const req = async (method: string, path: string, opts?: Parameters<typeof c.req>[2]): Promise<HttpResp> => {
    const r = await c.req(method, path, opts)
    responses.push([`${method} ${path}`, r])
    const id = r.headers.get('x-openstack-request-id')
    t.match(id, REQUEST_ID, `${method} ${path} → ${r.status} carries X-Openstack-Request-Id`)
    if (id !== null) seenIds.add(id)
    return r
  }

  // curl -s localhost:8888/   (no Zaqar headers at all)
  const versions = await req('GET', '/', { headers: { 'Client-ID': null, 'X-Project-ID': null } })
  t.equal(versions.status, 300, 'version list is a 300')
  t.match(versions.headers.get('content-type'), /^application\/json/)
  t.same(
    versions.json?.versions?.map((v: { id: string; status: string }) => [v.id, v.status]),
    [['1', 'DEPRECATED'], ['1.1', 'DEPRECATED'], ['2', 'CURRENT']],
    'every version listed',
  )
  t.same(versions.json.versions[2].links, [{ href: '/v2/', rel: 'self' }])

  // PUT queue
  const created = await req('PUT', q)
  t.equal(created.status, 201, 'queue created')
  t.equal(created.headers.get('location'), q)
  t.equal(created.text, '', 'no body')
  t.equal((await req('PUT', q)).status, 204, 'PUT again: already exists')

  // POST messages
  const posted = await req('POST', `${q}/messages`, {
    body: { messages: [{ ttl: 300, body: { event: 'BackupStarted' } }, { body: 'hello' }] },
  })
  t.equal(posted.status, 201, 'messages posted')
  t.equal(posted.json?.resources?.length, 2)
  const ids: string[] = (posted.json?.resources ?? []).map(idFromHref)
  for (const href of posted.json?.resources ?? []) t.match(href, /^\/v2\/queues\/billing\/messages\/[^/?]+$/)
  t.equal(posted.headers.get('location'), `${q}/messages?ids=${ids.join(',')}`)

  // GET messages?echo=true
  const listed = await req('GET', `${q}/messages?echo=true`)
  t.equal(listed.status, 200)
  t.same(
    listed.json?.messages?.map((x: { id: string; body: unknown; ttl: number }) => [x.id, x.body, x.ttl]),
    [[ids[0], { event: 'BackupStarted' }, 300], [ids[1], 'hello', 3600]],
    'both messages, FIFO, default TTL 3600',
  )
  t.equal(listed.json?.links?.length, 1, 'a non-empty page has a next link')
  const ownOnly = await req('GET', `${q}/messages`)
  t.same(ownOnly.json, { messages: [], links: [] }, 'echo=false hides our own messages')

  // POST claims
  const claim = await req('POST', `${q}/claims`, { body: { ttl: 60, grace: 60 } })
  t.equal(claim.status, 201, 'claim created')
  const cid = /\/v2\/queues\/billing\/claims\/([^/?]+)$/.exec(claim.headers.get('location') ?? '')?.[1]
  t.ok(cid, 'Location names the claim')
  t.equal(claim.json?.messages?.length, 2, 'both messages claimed')
  for (const msg of claim.json?.messages ?? []) {
    t.equal(msg.href, `${q}/messages/${msg.id}?claim_id=${cid}`, 'href ends in ?claim_id=<cid>')
  }

  // A delete without the claim id is refused while the claim holds.
  const refused = await req('DELETE', `${q}/messages/${ids[0]}`)
  t.equal(refused.status, 403, 'claimed message: delete without claim id is 403')
  t.match(refused.json, { title: 'Unable to delete', description: String })

  // DELETE message with claim id
  const deleted = await req('DELETE', `${q}/messages/${ids[0]}?claim_id=${cid}`)
  t.equal(deleted.status, 204, 'deleted with its claim id')
  const gone = await req('GET', `${q}/messages/${ids[0]}`)
  t.equal(gone.status, 404, 'deleted message is gone')
  t.match(gone.json, { title: String, description: String }, 'errors are {title, description}')

  // GET stats
  const stats = await req('GET', `${q}/stats`)
  t.equal(stats.status, 200)
  t.match(stats.json, { messages: { claimed: 1, free: 0, total: 1 } }, 'one message left, claimed')
  t.equal(stats.json?.messages?.oldest?.href, `${q}/messages/${ids[1]}`)

  // DELETE queue
  const dropped = await req('DELETE', q)
  t.equal(dropped.status, 204, 'queue deleted')
  t.same((await req('GET', `${q}/stats`)).json, { messages: { claimed: 0, free: 0, total: 0 } }, 'nothing left')
  const queues = await req('GET', '/v2/queues')
  t.equal(queues.status, 200)
  t.same(queues.json?.queues, [], 'queue no longer listed')

  // README sends its bodies with plain `curl -d`, i.e. as application/x-www-form-urlencoded,
  // which Zaqar (and Missive, docs/api.md, request checks) refuses; the error still carries a request id.
  const form = await req('POST', `${q}/messages`, {
    raw: JSON.stringify({ messages: [{ body: 1 }] }),
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
  })
  t.equal(form.status, 400, 'form-encoded body refused')
  t.equal(form.json?.title, 'Invalid Content-Type')

  // A client-supplied request id in the right form is echoed.
  const mine = 'req-3381af92-2b9e-41e3-b191-71861300734c'
  const echoed = await c.req('GET', '/v2/queues', { headers: { 'X-Openstack-Request-Id': mine } })
  t.equal(echoed.headers.get('x-openstack-request-id'), mine, 'a valid client request id is kept')

  t.equal(seenIds.size, responses.length, 'a distinct request id per response')
  t.same(responses.filter(([, r]) => r.status >= 500).map(([what, r]) => `${what} → ${r.status}`), [], 'no 5xx')
})
