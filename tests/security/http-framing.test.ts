/**
 * Framing: a request the server could read two ways is refused with 400 and the connection
 * closed (RFC 9112 §6.3); HEAD answers never carry a body; an over-long URL is a 414; responses
 * do not name the server. On both stores, through the whole service.
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { zaqarClient } from '../helpers/http.js'
import { hasResponse, isErrorBody, parseResponse, rawExchange, RawSocket } from './raw.js'
import { onBothStores } from './stores.js'

void onBothStores(t, 'framing', async (t, m) => {
  const project = `framing-${randomUUID()}`
  const base = `Host: 127.0.0.1\r\nClient-ID: ${randomUUID()}\r\nX-Project-ID: ${project}\r\n`
  const client = zaqarClient(m.baseUrl, { project })
  t.equal((await client.req('PUT', '/v2/queues/q')).status, 201)

  await t.test('duplicate Content-Length: 400, nothing stored, connection closed', async (t) => {
    // ~900 KB of messages: over the 256 KiB post limit, under the 1 MiB read cap. uWS frames the
    // body by the first Content-Length; the limits used to read the last one.
    const messages = Array.from({ length: 3000 }, (_, i) => ({ body: { i, pad: 'x'.repeat(280) } }))
    const big = Buffer.from(JSON.stringify({ messages }))
    t.ok(big.length > 262144 && big.length < 1048576, `body of ${big.length} bytes`)
    const s = await RawSocket.open(m.port)
    // The head alone first: the refusal must come from it, before any of the body is read. Had
    // the body been sent with it, the server's close could meet bytes still arriving, and the
    // reset that follows may erase the 400 from this side's buffers before it is read (RFC 9112
    // §9.6) — a race that failed this test once in CI. A server that waited for the body instead
    // would leave `until` to time out.
    await s.write(`POST /v2/queues/q/messages HTTP/1.1\r\n${base}Content-Type: application/json\r\nContent-Length: ${big.length}\r\nContent-Length: 10\r\n\r\n`)
    await s.until(hasResponse())
    const r = parseResponse(s.buf)?.res
    t.equal(r?.status, 400)
    t.ok(isErrorBody(r?.json), String(JSON.stringify(r?.json)).slice(0, 200))
    t.match(r?.json?.description, /Content-Length/)
    await s.closedWithin()
    t.ok(s.closed, 'connection closed after ambiguous framing')
    s.destroy()
    const stats = await client.req('GET', '/v2/queues/q/stats')
    t.equal(stats.json?.messages?.total, 0, 'nothing was stored')
  })

  await t.test('the same Content-Length twice is refused too', async (t) => {
    const r = await rawExchange(m.port, `PUT /v2/queues/q2 HTTP/1.1\r\n${base}Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}`)
    t.equal(r?.status, 400)
    t.ok(isErrorBody(r?.json))
  })

  await t.test('Transfer-Encoding repeated, with another coding, or with Content-Length', async (t) => {
    const chunked = '2\r\n{}\r\n0\r\n\r\n'
    for (const [what, te] of [
      ['twice', 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n'],
      ['gzip, chunked', 'Transfer-Encoding: gzip, chunked\r\n'],
    ]) {
      const r = await rawExchange(m.port, `PUT /v2/queues/te HTTP/1.1\r\n${base}Content-Type: application/json\r\n${te}\r\n${chunked}`)
      t.equal(r?.status, 400, what)
      t.ok(isErrorBody(r?.json), what)
    }
    const names = ((await client.req('GET', '/v2/queues')).json?.queues ?? []).map((q: { name: string }) => q.name)
    t.notOk(names.includes('te'), 'no queue was created')
    // uWS closes these itself before any handler runs (docs/security.md): never a 2xx.
    const both = await rawExchange(m.port, `PUT /v2/queues/te HTTP/1.1\r\n${base}Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`)
    t.ok(both === null || both.status === 400, `Content-Length with Transfer-Encoding: ${both?.status ?? 'closed'}`)
  })

  await t.test('HEAD never gets a body, and the kept-alive connection stays in step', async (t) => {
    const s = await RawSocket.open(m.port)
    for (const path of ['/v2/queues/q', '/v2/nothing/here', '/v2/queues', '/v2/queues/q/messages', '/']) {
      s.buf = Buffer.alloc(0)
      await s.write(`HEAD ${path} HTTP/1.1\r\n${base}\r\n`)
      await s.until(hasResponse(true))
      const head = parseResponse(s.buf, true)
      t.ok(head !== null && head.res.status >= 400, `HEAD ${path}: ${head?.res.status}`)
      // The next request on the same connection: its answer must start right after the head.
      await s.write(`GET /v2/ping HTTP/1.1\r\n${base}\r\n`)
      await s.until((b) => {
        const first = parseResponse(b, true)
        return first !== null && first.rest.length >= 12
      })
      const rest = parseResponse(s.buf, true)!.rest
      t.equal(rest.subarray(0, 12).toString('latin1'), 'HTTP/1.1 204', `HEAD ${path}: no body bytes before the next response`)
      await s.until((b) => parseResponse(parseResponse(b, true)!.rest) !== null)
    }
    t.notOk(s.closed)
    s.destroy()
  })

  await t.test('an over-long URL is a 414', async (t) => {
    const r = await client.req('GET', `/v2/queues?marker=${'a'.repeat(20_000)}`)
    t.equal(r.status, 414)
    t.ok(isErrorBody(r.json), r.text.slice(0, 200))
    t.equal((await client.req('GET', '/v2/queues')).status, 200, 'still serving')
  })

  await t.test('no uWebSockets header', async (t) => {
    for (const [method, path] of [['GET', '/'], ['GET', '/v2/queues'], ['GET', '/v2/nothing'], ['HEAD', '/v2/ping']] as const) {
      const r = await client.req(method, path)
      t.equal(r.headers.get('uwebsockets'), null, `${method} ${path}`)
    }
  })
})
