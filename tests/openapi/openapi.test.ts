/**
 * The OpenAPI document (GET /openapi.json, docs/openapi.md) cannot drift from the service:
 * every route of the route table has its operation (and no operation lacks a route); the
 * document validates against the OpenAPI 3.1 schema (tests/openapi/oas-3.1-schema.json, the
 * OpenAPI Initiative's, Apache-2.0) with jsonschema (Debian's python3-jsonschema, Draft 2020-12);
 * and live answers of a real `missive serve` to every operation, errors included, on the SQLite
 * store and on a Redis pool, validate against the document's schemas for their status.
 */
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { openApiJson } from '../../proxy/api/openapi.js'
import { ROUTES } from '../../proxy/api/routes.js'
import { ROOT, startMissive, startRedis } from '../helpers/index.js'

const ADMIN = 'openapi-admin-token'

// Two real services (SQLite, Redis) and a Python validation of every answer.
t.setTimeout(240_000)
const PYTHON = '/usr/bin/python3'
const doc = JSON.parse(openApiJson()) as { paths: Record<string, Record<string, unknown>> }
const meta = JSON.parse(readFileSync(join(ROOT, 'tests/openapi/oas-3.1-schema.json'), 'utf8')) as unknown
/** Paths the document adds beside the route table (served by proxy/app.ts itself). */
const EXTRA = ['/', '/openapi.json', '/metrics']

interface Recorded {
  method: string
  path: string
  status: number
  contentType: string
  body: string
}

function validate(responses: Recorded[]): Promise<{ document: string[]; responses: string[] }> {
  return new Promise((resolve, reject) => {
    const child = execFile(PYTHON, [join(ROOT, 'tests/openapi/validate.py')], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null) return reject(new Error(`validate.py failed (python3-jsonschema installed?): ${stderr}`))
      resolve(JSON.parse(stdout) as { document: string[]; responses: string[] })
    })
    child.stdin!.end(JSON.stringify({ doc, meta, responses }))
  })
}

t.test('every route of the table is in the document, and nothing else', async (t) => {
  const fromRoutes = new Set(ROUTES.map((r) => `${r.method.toLowerCase()} ${r.path === '' ? '/v2/' : `/v2/${r.path}`}`))
  const fromDoc = new Set<string>()
  for (const [path, ops] of Object.entries(doc.paths)) {
    if (EXTRA.includes(path)) continue
    for (const method of Object.keys(ops)) fromDoc.add(`${method} ${path}`)
  }
  t.same([...fromRoutes].filter((k) => !fromDoc.has(k)), [], 'routes without an operation')
  t.same([...fromDoc].filter((k) => !fromRoutes.has(k)), [], 'operations without a route')
})

t.test('the document is valid OpenAPI 3.1', async (t) => {
  const r = await validate([])
  t.same(r.document, [])
})

for (const store of ['sqlite', 'redis'] as const) {
  t.test(`${store}: live answers to every operation match the document`, async (t) => {
    const env: Record<string, string> = { MISSIVE_ADMIN_TOKEN: ADMIN }
    if (store === 'redis') env.MISSIVE_DEFAULT_POOL = (await startRedis(t, { appendfsync: 'always' })).url
    // Rate limits on (with no limit set: nothing is throttled) so their admin API answers 200.
    const m = await startMissive(t, { env, config: { rateLimits: { enabled: true } } })
    const recorded: Recorded[] = []
    const headers = { 'Client-ID': randomUUID(), 'X-Project-ID': 'openapi' }
    /** One request; `template` is the document's path for it. */
    const call = async (method: string, path: string, template: string, opts: { body?: unknown; raw?: string; admin?: boolean; headers?: Record<string, string> } = {}) => {
      const h: Record<string, string> = { ...headers, ...(opts.admin === true ? { 'X-Auth-Token': ADMIN } : {}), ...opts.headers }
      let body: string | undefined = opts.raw
      if (opts.body !== undefined) {
        body = JSON.stringify(opts.body)
        h['Content-Type'] ??= 'application/json'
      }
      const res = await fetch(m.baseUrl + path, { method, headers: h, ...(body === undefined ? {} : { body }) })
      const text = await res.text()
      recorded.push({ method, path: template, status: res.status, contentType: res.headers.get('content-type') ?? '', body: text })
      return { status: res.status, json: text === '' || !(res.headers.get('content-type') ?? '').includes('json') ? undefined : JSON.parse(text) }
    }

    const served = await fetch(`${m.baseUrl}/openapi.json`)
    t.equal(served.status, 200, 'served without any header')
    t.same(await served.json(), doc, 'the served document is this build\'s')
    recorded.push({ method: 'GET', path: '/openapi.json', status: 200, contentType: served.headers.get('content-type') ?? '', body: JSON.stringify(doc) })
    await call('GET', '/', '/')
    await call('GET', '/metrics', '/metrics')
    await call('GET', '/v2/', '/v2/')
    await call('GET', '/v2/ping', '/v2/ping')
    await call('HEAD', '/v2/ping', '/v2/ping')
    await call('GET', '/v2/ping', '/v2/ping', { headers: { 'Client-ID': 'not-a-uuid' } })
    await call('GET', '/v2/health', '/v2/health', { admin: true })
    await call('GET', '/v2/health', '/v2/health')

    const Q = '/v2/queues/{queue}'
    t.equal((await call('PUT', '/v2/queues/q1', Q, { body: { _default_message_ttl: 3600 } })).status, 201)
    await call('PUT', '/v2/queues/q1', Q)
    await call('PUT', '/v2/queues/bad$name', Q)
    await call('GET', '/v2/queues/q1', Q)
    await call('PATCH', '/v2/queues/q1', Q, { raw: JSON.stringify([{ op: 'add', path: '/metadata/color', value: 'blue' }]), headers: { 'Content-Type': 'application/openstack-messaging-v2.0-json-patch' } })
    await call('GET', '/v2/queues', '/v2/queues')
    await call('GET', '/v2/queues?detailed=true&with_count=true', '/v2/queues')
    await call('GET', '/v2/queues?limit=0', '/v2/queues')
    await call('GET', '/v2/queues/q1/stats', `${Q}/stats`)
    const posted = await call('POST', '/v2/queues/q1/messages', `${Q}/messages`, { body: { messages: [{ body: { a: 1 } }, { body: 'two', ttl: 300 }, { body: 3 }] } })
    t.equal(posted.status, 201)
    const ids = (posted.json.resources as string[]).map((h) => h.split('/').pop()!)
    await call('POST', '/v2/queues/q1/messages', `${Q}/messages`, { body: { messages: [] } })
    await call('GET', '/v2/queues/q1/stats', `${Q}/stats`)
    await call('GET', '/v2/queues/q1/messages?echo=true', `${Q}/messages`)
    await call('GET', `/v2/queues/q1/messages?ids=${ids[0]},${ids[1]}`, `${Q}/messages`)
    await call('GET', `/v2/queues/q1/messages/${ids[0]}`, `${Q}/messages/{messageId}`)
    await call('GET', '/v2/queues/q1/messages/0123456789abcdef01234567', `${Q}/messages/{messageId}`)
    const claim = await call('POST', '/v2/queues/q1/claims?limit=2', `${Q}/claims`, { body: { ttl: 60, grace: 60 } })
    t.equal(claim.status, 201)
    const claimed = claim.json.messages as { id: string }[]
    const cid = randomUUID()
    await call('GET', `/v2/queues/q1/claims/${cid}`, `${Q}/claims/{claimId}`)
    // The claim's id, from a claimed message's href.
    const msg = await call('GET', `/v2/queues/q1/messages/${claimed[0]!.id}`, `${Q}/messages/{messageId}`)
    t.equal(msg.status, 200)
    const listed = await call('GET', '/v2/queues/q1/messages?echo=true&include_claimed=true', `${Q}/messages`)
    const href = (listed.json.messages as { href: string }[]).find((x) => x.href.includes('claim_id='))?.href ?? ''
    const claimId = new URL(href, m.baseUrl).searchParams.get('claim_id')!
    await call('GET', `/v2/queues/q1/claims/${claimId}`, `${Q}/claims/{claimId}`)
    await call('PATCH', `/v2/queues/q1/claims/${claimId}`, `${Q}/claims/{claimId}`, { body: { ttl: 120, grace: 60 } })
    await call('DELETE', `/v2/queues/q1/messages/${claimed[0]!.id}`, `${Q}/messages/{messageId}`)
    await call('DELETE', `/v2/queues/q1/messages/${claimed[0]!.id}?claim_id=${claimId}`, `${Q}/messages/{messageId}`)
    await call('DELETE', `/v2/queues/q1/claims/${claimId}`, `${Q}/claims/{claimId}`)
    await call('DELETE', `/v2/queues/q1/messages?pop=1`, `${Q}/messages`)
    await call('DELETE', `/v2/queues/q1/messages?ids=${ids[2]}`, `${Q}/messages`)
    await call('DELETE', `/v2/queues/q1/messages`, `${Q}/messages`)
    await call('POST', '/v2/queues/q1/claims', `${Q}/claims`, { body: { ttl: 60, grace: 60 } })
    await call('POST', '/v2/queues/q1/purge', `${Q}/purge`, { body: { resource_types: ['messages'] } })
    await call('POST', '/v2/queues/q1/share', `${Q}/share`, { body: { paths: ['messages'], methods: ['GET'] } })
    await call('POST', '/v2/queues/q1/share', `${Q}/share`, { body: { paths: ['nope'] } })
    const S = `${Q}/subscriptions`
    const sub = await call('POST', '/v2/queues/q1/subscriptions', S, { body: { subscriber: 'http://example.com/hook', ttl: 3600, options: {} } })
    t.equal(sub.status, 201)
    const sid = sub.json.subscription_id as string
    await call('POST', '/v2/queues/q1/subscriptions', S, { body: { subscriber: 'ftp://x' } })
    await call('GET', '/v2/queues/q1/subscriptions?limit=5', S)
    await call('GET', '/v2/queues/q1/subscriptions?limit=0', S)
    await call('GET', `/v2/queues/q1/subscriptions/${sid}`, `${S}/{subscription}`)
    await call('GET', '/v2/queues/q1/subscriptions/nope', `${S}/{subscription}`)
    await call('PATCH', `/v2/queues/q1/subscriptions/${sid}`, `${S}/{subscription}`, { body: { ttl: 600 } })
    await call('PATCH', '/v2/queues/q1/subscriptions/nope', `${S}/{subscription}`, { body: { ttl: 600 } })
    await call('PATCH', `/v2/queues/q1/subscriptions/${sid}`, `${S}/{subscription}`, { body: { ttl: 'x' } })
    await call('PUT', `/v2/queues/q1/subscriptions/${sid}/confirm`, `${S}/{subscription}/confirm`, { body: { confirmed: true } })
    await call('PUT', '/v2/queues/q1/subscriptions/nope/confirm', `${S}/{subscription}/confirm`, { body: { confirmed: true } })
    await call('POST', '/v2/queues/q1/subscriptions', S, { body: { subscriber: 'http://example.com/hook' } })
    await call('PATCH', `/v2/queues/q1/subscriptions/${sid}`, `${S}/{subscription}`, { body: { subscriber: 'http://example.com/other' } })
    await call('DELETE', `/v2/queues/q1/subscriptions/${sid}`, `${S}/{subscription}`)
    await call('DELETE', '/v2/queues/q1', Q)

    // Topics (docs/notifications.md, "Topics").
    const T = '/v2/topics/{topic}'
    t.equal((await call('PUT', '/v2/topics/t1', T, { body: { color: 'red' } })).status, 201)
    await call('PUT', '/v2/topics/t1', T)
    await call('PUT', '/v2/topics/bad$name', T)
    await call('GET', '/v2/topics/t1', T)
    await call('PATCH', '/v2/topics/t1', T, { raw: JSON.stringify([{ op: 'add', path: '/metadata/size', value: 2 }]), headers: { 'Content-Type': 'application/openstack-messaging-v2.0-json-patch' } })
    await call('PATCH', '/v2/topics/nope', T, { raw: JSON.stringify([{ op: 'add', path: '/metadata/size', value: 2 }]), headers: { 'Content-Type': 'application/openstack-messaging-v2.0-json-patch' } })
    await call('GET', '/v2/topics', '/v2/topics')
    await call('GET', '/v2/topics?detailed=true&limit=1', '/v2/topics')
    await call('GET', '/v2/topics?limit=0', '/v2/topics')
    const tposted = await call('POST', '/v2/topics/t1/messages', `${T}/messages`, { body: { messages: [{ body: { a: 1 } }, { body: 'two' }, { body: 3 }] } })
    t.equal(tposted.status, 201)
    const tids = (tposted.json.resources as string[]).map((h) => h.split('/').pop()!)
    await call('POST', '/v2/topics/t1/messages', `${T}/messages`, { body: { messages: [] } })
    await call('GET', '/v2/topics/t1/stats', `${T}/stats`)
    await call('GET', '/v2/topics/t1/messages?echo=true', `${T}/messages`)
    await call('GET', `/v2/topics/t1/messages?ids=${tids[0]},${tids[1]}`, `${T}/messages`)
    await call('GET', `/v2/topics/t1/messages/${tids[0]}`, `${T}/messages/{messageId}`)
    await call('GET', '/v2/topics/t1/messages/0123456789abcdef01234567', `${T}/messages/{messageId}`)
    await call('DELETE', `/v2/topics/t1/messages/${tids[0]}`, `${T}/messages/{messageId}`)
    await call('DELETE', '/v2/topics/t1/messages?pop=1', `${T}/messages`)
    await call('DELETE', `/v2/topics/t1/messages?ids=${tids[2]}`, `${T}/messages`)
    await call('DELETE', '/v2/topics/t1/messages', `${T}/messages`)
    const TS = `${T}/subscriptions`
    const tsub = await call('POST', '/v2/topics/t1/subscriptions', TS, { body: { subscriber: 'http://example.com/topic-hook', ttl: 3600 } })
    t.equal(tsub.status, 201)
    const tsid = tsub.json.subscription_id as string
    await call('POST', '/v2/topics/t1/subscriptions', TS, { body: { subscriber: 'ftp://x' } })
    await call('GET', '/v2/topics/t1/subscriptions?limit=5', TS)
    await call('GET', '/v2/topics/t1/subscriptions?limit=0', TS)
    await call('GET', `/v2/topics/t1/subscriptions/${tsid}`, `${TS}/{subscription}`)
    await call('GET', '/v2/topics/t1/subscriptions/nope', `${TS}/{subscription}`)
    await call('PATCH', `/v2/topics/t1/subscriptions/${tsid}`, `${TS}/{subscription}`, { body: { ttl: 600 } })
    await call('PATCH', '/v2/topics/t1/subscriptions/nope', `${TS}/{subscription}`, { body: { ttl: 600 } })
    await call('PUT', `/v2/topics/t1/subscriptions/${tsid}/confirm`, `${TS}/{subscription}/confirm`, { body: { confirmed: true } })
    await call('PUT', '/v2/topics/t1/subscriptions/nope/confirm', `${TS}/{subscription}/confirm`, { body: { confirmed: 'yes' } })
    await call('POST', '/v2/topics/t1/subscriptions', TS, { body: { subscriber: 'http://example.com/topic-hook' } })
    await call('DELETE', `/v2/topics/t1/subscriptions/${tsid}`, `${TS}/{subscription}`)
    await call('POST', '/v2/topics/t1/purge', `${T}/purge`, { body: { resource_types: ['messages', 'subscriptions'] } })
    await call('POST', '/v2/topics/t1/purge', `${T}/purge`, { body: { resource_types: ['claims'] } })
    await call('DELETE', '/v2/topics/t1', T)

    await call('GET', '/v2/pools', '/v2/pools', { admin: true })
    await call('GET', '/v2/pools', '/v2/pools')
    t.equal((await call('PUT', '/v2/pools/p1', '/v2/pools/{pool}', { admin: true, body: { weight: 0, uri: 'sqlite:p1.sqlite', options: { workers: 0 } } })).status, 201)
    await call('PUT', '/v2/pools/p2', '/v2/pools/{pool}', { admin: true, body: { weight: 0, uri: 'sqlite:/etc/passwd' } })
    await call('GET', '/v2/pools/p1?detailed=true', '/v2/pools/{pool}', { admin: true })
    await call('GET', '/v2/pools/nope', '/v2/pools/{pool}', { admin: true })
    await call('PATCH', '/v2/pools/p1', '/v2/pools/{pool}', { admin: true, body: { weight: 2 } })
    await call('GET', '/v2/pools?detailed=true', '/v2/pools', { admin: true })
    await call('PUT', '/v2/flavors/f1', '/v2/flavors/{flavor}', { admin: true, body: { pool_list: ['p1'] } })
    await call('GET', '/v2/flavors/f1', '/v2/flavors/{flavor}', { admin: true })
    await call('PATCH', '/v2/flavors/f1', '/v2/flavors/{flavor}', { admin: true, body: { pool_list: ['p1'] } })
    await call('GET', '/v2/flavors?detailed=true', '/v2/flavors', { admin: true })
    await call('GET', '/v2/flavors/nope', '/v2/flavors/{flavor}', { admin: true })
    await call('DELETE', '/v2/flavors/f1', '/v2/flavors/{flavor}', { admin: true })
    await call('DELETE', '/v2/pools/p1', '/v2/pools/{pool}', { admin: true })
    await call('PUT', '/v2/queues/q2', Q)
    await call('GET', '/v2/admin/pools/default/stats', '/v2/admin/pools/{pool}/stats', { admin: true })
    await call('GET', '/v2/admin/queues?limit=1', '/v2/admin/queues', { admin: true })
    await call('GET', '/v2/admin/queues?marker=zz', '/v2/admin/queues', { admin: true })
    await call('GET', '/v2/admin/queues/top?by=age', '/v2/admin/queues/top', { admin: true })

    // Live migrations (docs/migration.md): q2 moves to p3, served inside the proxy.
    const M = '/v2/admin/migrations'
    t.equal((await call('PUT', '/v2/pools/p3', '/v2/pools/{pool}', { admin: true, body: { weight: 0, uri: 'sqlite:p3.sqlite', options: { workers: 0 } } })).status, 201)
    await call('POST', M, M, { admin: true, body: { project: 'openapi', queue: 'q2' } })
    await call('POST', M, M, { admin: true, body: { project: 'openapi', queue: 'nope', to_pool: 'p3' } })
    const mig = await call('POST', M, M, { admin: true, body: { project: 'openapi', queue: 'q2', to_pool: 'p3', rate: 1000 } })
    t.equal(mig.status, 202)
    await call('GET', `${M}?state=copying&limit=5`, M, { admin: true })
    await call('GET', `${M}?state=bogus`, M, { admin: true })
    await call('GET', `${M}/${mig.json.id}`, `${M}/{migration}`, { admin: true })
    await call('GET', `${M}/0000000000000000000000`, `${M}/{migration}`, { admin: true })
    await call('DELETE', `${M}/${mig.json.id}`, `${M}/{migration}`, { admin: true })
    await call('DELETE', `${M}/0000000000000000000000`, `${M}/{migration}`, { admin: true })
    const D = '/v2/admin/pools/{pool}/drain'
    await call('POST', '/v2/admin/pools/default/drain', D, { admin: true, body: {} })
    await call('POST', '/v2/admin/pools/p3/drain', D, { admin: true, body: { max_concurrent: 2 } })
    await call('GET', '/v2/admin/pools/p3/drain', D, { admin: true })
    await call('GET', '/v2/admin/pools/nope/drain', D, { admin: true })
    await call('DELETE', '/v2/admin/pools/p3/drain', D, { admin: true })
    await call('POST', '/v2/admin/rebalance', '/v2/admin/rebalance', { admin: true, body: { tolerance: 0.2 } })
    await call('POST', '/v2/admin/rebalance', '/v2/admin/rebalance', { admin: true, body: { tolerance: 2 } })

    // API keys are served with auth.strategy "keys" only: here each call is the documented 404.
    await call('GET', '/v2/admin/keys', '/v2/admin/keys', { admin: true })
    await call('POST', '/v2/admin/keys', '/v2/admin/keys', { admin: true, body: { project: 'p' } })
    await call('GET', '/v2/admin/keys/0123456789abcdef', '/v2/admin/keys/{key}', { admin: true })
    await call('DELETE', '/v2/admin/keys/0123456789abcdef', '/v2/admin/keys/{key}', { admin: true })
    const L = '/v2/admin/limits/{tenant}'
    await call('GET', '/v2/admin/limits/openapi', L, { admin: true })
    t.equal((await call('PUT', '/v2/admin/limits/openapi', L, { admin: true, body: { requestsPerSecond: 0 } })).status, 200)
    await call('GET', '/v2/admin/limits/openapi', L, { admin: true })
    await call('PUT', '/v2/admin/limits/openapi', L, { admin: true, body: { bogus: 1 } })
    await call('DELETE', '/v2/admin/limits/openapi', L, { admin: true })

    const seen = new Set(recorded.map((r) => `${r.method.toLowerCase()} ${r.path}`))
    const all = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((meth) => `${meth} ${p}`))
    t.same(all.filter((k) => !seen.has(k)), [], 'every operation of the document was answered live')
    const r = await validate(recorded)
    t.same(r.responses, [], `${recorded.length} live answers validate against the document`)
  })
}
