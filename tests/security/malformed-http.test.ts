/**
 * Requests uWS 20.30 refuses before any handler of ours runs (docs/security.md, "Malformed
 * HTTP"): they never get an answer — uWS either closes at once or holds the connection until its
 * 10-second idle timeout — and the service keeps serving everyone else meanwhile. This pins the
 * measured behaviour so an upgrade of uWS that changes it shows up here (and in the docs).
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { zaqarClient } from '../helpers/http.js'
import { RawSocket } from './raw.js'
import { onBothStores } from './stores.js'

const H = `Client-ID: ${randomUUID()}\r\nX-Project-ID: malformed\r\n`

/** Closed at once by uWS, without a byte of answer. */
const CLOSED = {
  'unknown method': `FOO /v2/queues HTTP/1.1\r\nHost: x\r\n${H}\r\n`,
  'HTTP/1.1 without Host': `GET /v2/queues HTTP/1.1\r\n${H}\r\n`,
  'Content-Length with Transfer-Encoding': `PUT /v2/queues/x HTTP/1.1\r\nHost: x\r\n${H}Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
  'a request head over 128 KiB': `GET /v2/queues?m=${'a'.repeat(140_000)} HTTP/1.1\r\nHost: x\r\n${H}\r\n`,
}
/** Held by uWS without an answer until its idle timeout. */
const HELD = {
  'bare LF line ends': `GET /v2/queues HTTP/1.1\nHost: x\n${H.replaceAll('\r\n', '\n')}\n`,
  'obs-fold': `GET /v2/queues HTTP/1.1\r\nHost: x\r\n${H}X-Long: a\r\n b\r\n\r\n`,
  'HTTP/2 preface': 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
  'NUL in a header value': `GET /v2/queues HTTP/1.1\r\nHost: x\r\n${H}X: a\u0000b\r\n\r\n`,
  'space before the colon': `GET /v2/queues HTTP/1.1\r\nHost: x\r\n${H}X-Project-ID : other\r\n\r\n`,
}

void onBothStores(t, 'malformed HTTP', async (t, m) => {
  const held: [string, RawSocket][] = []
  for (const [what, raw] of Object.entries(HELD)) {
    const s = await RawSocket.open(m.port)
    await s.write(raw)
    held.push([what, s])
  }
  for (const [what, raw] of Object.entries(CLOSED)) {
    const s = await RawSocket.open(m.port)
    await s.write(raw)
    await s.closedWithin()
    t.ok(s.closed, `${what}: closed`)
    t.equal(s.buf.length, 0, `${what}: without an answer`)
    s.destroy()
  }
  // While those connections are held, everyone else is served.
  const c = zaqarClient(m.baseUrl)
  t.equal((await c.req('PUT', '/v2/queues/ok')).status, 201)
  t.equal((await c.req('GET', '/v2/queues')).status, 200)
  for (const [what, s] of held) {
    t.equal(s.buf.length, 0, `${what}: no answer`)
    s.destroy()
  }
})
