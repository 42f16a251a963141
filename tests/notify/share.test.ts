/**
 * Pre-signed URLs (docs/notifications.md, "Pre-signed URLs"; zaqar/common/urls.py,
 * zaqar/transport/wsgi/v2_0/urls.py): `POST …/share` signs; a signed request needs no other
 * credential, for exactly the signed methods, paths, project and time. Signatures are checked
 * against Zaqar's own `create_signed_url` from Debian's python3-zaqar, both ways. Authentication
 * is strategy `keys`, so an unsigned request without a key is refused: the signature alone lets
 * the signed requests in. SQLite and Redis (store and catalog).
 */
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { formatExpires, signature } from '../../proxy/auth/signed-url.js'
import { backend, startProxy } from '../auth/harness.js'

const KEY = 'share-test-secret-Ωκ'
const ADMIN = 'share-admin-token'

/** Zaqar's `create_signed_url`, run by /usr/bin/python3 from the installed package. */
function zaqarSign(paths: string[], project: string, expires: string, methods: string[]): Promise<{ signature: string; paths: string[]; methods: string[]; expires: string; project: string }> {
  const code = 'import json,sys\nfrom zaqar.common import urls\na=json.loads(sys.argv[1])\nprint(json.dumps(urls.create_signed_url(a["key"], a["paths"], project=a["project"], expires=a["expires"], methods=a["methods"])))'
  return new Promise((resolve, reject) => {
    execFile('/usr/bin/python3', ['-c', code, JSON.stringify({ key: KEY, paths, project, expires, methods })], (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`zaqar.common.urls failed: ${stderr}`))
      else resolve(JSON.parse(stdout))
    })
  })
}

for (const name of ['sqlite', 'redis'] as const) {
  t.test(`${name}: pre-signed URLs`, async (t) => {
    const b = await backend(t, name)
    const p = await startProxy(t, b, { auth: { strategy: 'keys' }, adminToken: ADMIN, signed_url: { secret_key: KEY } })
    const project = `p-${randomUUID()}`
    const base = { 'Client-ID': randomUUID(), 'X-Project-ID': project }
    const call = async (method: string, path: string, headers: Record<string, string>, body?: unknown) => {
      const res = await fetch(p.base + path, {
        method,
        headers: { ...base, ...headers, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      })
      const text = await res.text()
      return { status: res.status, json: text === '' ? undefined : JSON.parse(text) }
    }
    const admin = { 'X-Auth-Token': ADMIN }
    t.equal((await call('POST', '/v2/queues/q/messages', admin, { messages: [{ body: 'one' }] })).status, 201)
    t.equal((await call('GET', '/v2/queues/q/messages?echo=true', {})).status, 401, 'no credential: refused')

    // Sign with the API, and check the signature against Zaqar's own code.
    const expiresAt = formatExpires(Date.now() + 3_600_000)
    const share = await call('POST', '/v2/queues/q/share', admin, { methods: ['POST', 'GET'], paths: ['messages'], expires: expiresAt })
    t.equal(share.status, 200)
    t.same(Object.keys(share.json).sort(), ['expires', 'methods', 'paths', 'project', 'signature'])
    t.same(share.json.paths, ['/v2/queues/q/messages'])
    t.same(share.json.methods, ['GET', 'POST'])
    t.equal(share.json.project, project)
    t.equal(share.json.expires, expiresAt)
    const zaqar = await zaqarSign(['/v2/queues/q/messages'], project, expiresAt, ['POST', 'GET'])
    t.equal(share.json.signature, zaqar.signature, "Missive's signature is Zaqar's")

    const signed = (doc: { signature: string; expires: string; methods: string[]; paths: string[] }): Record<string, string> => ({
      'URL-Signature': doc.signature,
      'URL-Expires': doc.expires,
      'URL-Methods': doc.methods.join(','),
      'URL-Paths': doc.paths.join(','),
    })
    // A URL Zaqar signed works here, without any other credential.
    const listed = await call('GET', '/v2/queues/q/messages?echo=true', signed(zaqar))
    t.equal(listed.status, 200)
    t.same(listed.json.messages.map((m: { body: unknown }) => m.body), ['one'])
    const posted = await call('POST', '/v2/queues/q/messages', signed(share.json), { messages: [{ body: 'two' }] })
    t.equal(posted.status, 201)
    const one = posted.json.resources[0].split('/').pop()
    t.equal((await call('GET', `/v2/queues/q/messages/${one}`, signed(share.json))).status, 200, 'what lies under a signed path')

    // Everything else: 403.
    const refused = async (what: string, method: string, path: string, headers: Record<string, string>) => {
      const r = await call(method, path, headers)
      t.equal(r.status, 403, what)
      t.equal(r.json?.title, 'Not authorized', what)
    }
    const good = signed(share.json)
    await refused('a method not signed', 'DELETE', '/v2/queues/q/messages', good)
    await refused('another queue', 'GET', '/v2/queues/q2/messages', good)
    await refused('a prefix of the queue name', 'GET', '/v2/queues/qq/messages', good)
    await refused('a path not signed', 'GET', '/v2/queues/q/claims', good)
    await refused('another project', 'GET', '/v2/queues/q/messages', { ...good, 'X-Project-ID': 'intruder' })
    await refused('a tampered signature', 'GET', '/v2/queues/q/messages', { ...good, 'URL-Signature': good['URL-Signature']!.replace(/^./, (c) => (c === 'a' ? 'b' : 'a')) })
    await refused('widened methods', 'DELETE', '/v2/queues/q/messages', { ...good, 'URL-Methods': 'DELETE,GET,POST' })
    await refused('widened paths', 'GET', '/v2/queues/other/messages', { ...good, 'URL-Paths': '/v2/queues/other/messages,/v2/queues/q/messages' })
    await refused('a later expiry', 'GET', '/v2/queues/q/messages', { ...good, 'URL-Expires': formatExpires(Date.now() + 7_200_000) })
    const past = formatExpires(Date.now() - 1000)
    const expired = { signature: signature(KEY, ['/v2/queues/q/messages'], ['GET'], project, past), expires: past, methods: ['GET'], paths: ['/v2/queues/q/messages'] }
    await refused('expired', 'GET', '/v2/queues/q/messages', signed(expired))
    await refused('no expiry', 'GET', '/v2/queues/q/messages', { 'URL-Signature': good['URL-Signature']!, 'URL-Methods': 'GET', 'URL-Paths': '/v2/queues/q/messages' })
    t.equal((await call('GET', '/v2/queues/q/messages?echo=true', good)).status, 200, 'the good one still works')

    // Defaults: messages, GET, one day.
    const dflt = await call('POST', '/v2/queues/q/share', admin, {})
    t.same([dflt.json.paths, dflt.json.methods], [['/v2/queues/q/messages'], ['GET']])
    t.equal((await call('GET', '/v2/queues/q/messages?echo=true', signed(dflt.json))).status, 200)
    await refused('GET only', 'POST', '/v2/queues/q/messages', signed(dflt.json))

    // Zaqar's validation messages.
    const badShare = async (body: unknown, description: string) => {
      const r = await call('POST', '/v2/queues/q/share', admin, body)
      t.equal(r.status, 400, JSON.stringify(body))
      t.same(r.json, { title: 'Invalid API request', description }, JSON.stringify(body))
    }
    await badShare({ foo: 1 }, "Unknown keys: {'foo'}")
    await badShare({ paths: ['queues'] }, "Invalid paths: {'queues'}")
    await badShare({ expires: 1893456000 }, '`expires` should be date format, for example 2016-01-01T00:00:00, not integer value: 1893456000')
    await badShare({ expires: '2001-01-01T00:00:00' }, '`expires` is lower than the current time')
    await badShare({ methods: 'GET' }, '`methods` should be a list')
  })
}

t.test('without a secret_key nothing is signed or accepted', async (t) => {
  const b = await backend(t, 'sqlite')
  const p = await startProxy(t, b)
  const headers = { 'Client-ID': randomUUID(), 'X-Project-ID': 'p', 'Content-Type': 'application/json' }
  const share = await fetch(`${p.base}/v2/queues/q/share`, { method: 'POST', headers, body: '{}' })
  t.equal(share.status, 400)
  const expires = formatExpires(Date.now() + 60_000)
  const forged = await fetch(`${p.base}/v2/queues/q/messages`, {
    headers: { ...headers, 'URL-Signature': signature('', ['/v2/queues/q/messages'], ['GET'], 'p', expires), 'URL-Expires': expires, 'URL-Methods': 'GET', 'URL-Paths': '/v2/queues/q/messages' },
  })
  t.equal(forged.status, 403)
})
