// Hostile and broken input: always the exact 4xx with a JSON {title, description}, never a 5xx,
// and the service keeps serving afterwards.
import t from 'tap'
import { rawRequest, startHarness } from '../http/harness.js'

t.test('broken requests get a clear 4xx and the server keeps serving', async (t) => {
  const h = await startHarness(t)
  const hdr = `Client-ID: ${h.clientId}\r\nX-Project-ID: ${h.project}\r\nHost: x`
  const postRaw = (body: Buffer | string, extra = ''): Buffer => {
    const b = Buffer.isBuffer(body) ? body : Buffer.from(body)
    return Buffer.concat([Buffer.from(`POST /v2/queues/bad/messages HTTP/1.1\r\n${hdr}\r\nContent-Length: ${b.length}\r\n${extra}\r\n`), b])
  }

  const invalidUtf8 = await rawRequest(h.base, postRaw(Buffer.from([0x7b, 0x22, 0x6d, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])))
  t.equal(invalidUtf8.status, 400, 'invalid UTF-8')
  t.same(invalidUtf8.json, { title: 'Invalid request body', description: 'Request body could not be parsed.' })

  const noLength = await rawRequest(h.base, `POST /v2/queues/bad/messages HTTP/1.1\r\n${hdr}\r\n\r\n`)
  t.equal(noLength.status, 400, 'missing Content-Length')
  t.same(noLength.json, { title: 'Invalid request body', description: 'Request body can not be empty' })

  const chunked = await rawRequest(
    h.base,
    `POST /v2/queues/bad/messages HTTP/1.1\r\n${hdr}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n0\r\n\r\n`,
  )
  t.equal(chunked.status, 400, 'chunked body (no Content-Length) is refused like Zaqar')

  const badLength = await rawRequest(h.base, `POST /v2/queues/bad/messages HTTP/1.1\r\n${hdr}\r\nContent-Length: abc\r\n\r\n`)
  t.ok(badLength.status === 400 || badLength.status === 0, `bad Content-Length: ${badLength.status}`)

  const huge = await rawRequest(h.base, `GET /v2/queues HTTP/1.1\r\n${hdr}\r\nX-Junk: ${'a'.repeat(64 * 1024)}\r\n\r\n`)
  t.ok(huge.status === 431 || huge.status === 0, `huge headers are refused (${huge.status || 'connection closed'})`)
  t.not(huge.status, 200)

  const tooBig = await rawRequest(h.base, `POST /v2/queues/bad/messages HTTP/1.1\r\n${hdr}\r\nContent-Length: 50000000\r\n\r\n{`)
  t.equal(tooBig.status, 400, 'a declared 50 MB body is refused before it is read')
  t.same(tooBig.json, { title: 'Invalid API request', description: 'Message collection size is too large. Max size 262144' })

  const typeCases: [string, string][] = [
    ['{"messages":[{"body":1,"ttl":true}]}', 'The TTL for a message may not exceed 1209600 seconds, and must be at least 60 seconds long.'],
    ['{"messages":[{"body":1,"ttl":[60]}]}', 'The value of the "ttl" field must be a int.'],
    ['{"messages":[{"body":1,"ttl":{"a":1}}]}', 'The value of the "ttl" field must be a int.'],
    ['{"messages":[{"body":1,"ttl":1e2}]}', 'The value of the "ttl" field must be a int.'],
    ['{"messages":[{"body":1,"ttl":-99999999999999999999}]}', 'JSON contains integer that is too large.'],
    ['{"messages":[{"body":1,"ttl":18446744073709551616}]}', 'JSON contains integer that is too large.'],
    ['{"messages":[{"body":1,"ttl":null}]}', 'The value of the "ttl" field must be a int.'],
    ['{"messages":null}', 'Document type not supported.'],
    ['{"messages":[null]}', 'Document type not supported.'],
    ['{"messages":[[]]}', 'Document type not supported.'],
    ['{"messages":"x"}', 'Document type not supported.'],
    ['null', 'Request body could not be parsed.'],
    ['123', 'Request body could not be parsed.'],
    ['{"messages":[{"body":1}]} trailing', 'Request body could not be parsed.'],
    ['{"messages":[{"body":NaN}]}', 'Request body could not be parsed.'],
    ['\u0000', 'Request body could not be parsed.'],
  ]
  for (const [raw, description] of typeCases) {
    const r = await h.req('POST', '/v2/queues/bad/messages', { raw })
    t.equal(r.status, 400, raw)
    t.equal(r.json?.description, description, raw)
    t.ok(typeof r.json?.title === 'string', 'has a title')
  }

  const nested = '{"messages":[{"body":' + '['.repeat(100000) + ']'.repeat(100000) + '}]}'
  const deep = await h.req('POST', '/v2/queues/bad/messages', { raw: nested })
  t.equal(deep.status, 400, 'deeply nested JSON is refused, not a stack overflow')
  t.same(deep.json, { title: 'Invalid request body', description: 'JSON nesting is deeper than 256 levels.' })
  const fine = '{"messages":[{"body":' + '['.repeat(200) + ']'.repeat(200) + '}]}'
  t.equal((await h.req('POST', '/v2/queues/bad/messages', { raw: fine })).status, 201, '200 levels are fine')

  const proto = await h.req('POST', '/v2/queues/bad/messages', { raw: '{"messages":[{"body":{"__proto__":{"polluted":1}},"__proto__":{"ttl":1}}]}' })
  t.equal(proto.status, 201, '__proto__ keys are data, not prototypes')
  t.equal(({} as Record<string, unknown>).polluted, undefined)

  for (const q of ['%', '%zz', '..', '.', 'a%00b', encodeURIComponent('ü')]) {
    const r = await h.req('PUT', `/v2/queues/${q}`)
    // fetch resolves '.' and '..' segments itself, landing on other routes (405): still a 4xx.
    t.ok(r.status >= 400 && r.status < 500, `queue name ${q}: ${r.status}`)
  }
  const longParam = await h.req('GET', `/v2/queues/bad/messages?limit=${'9'.repeat(400)}`)
  t.equal(longParam.status, 400, 'absurd integers in query strings')

  const ping = await h.req('GET', '/v2/ping')
  t.equal(ping.status, 204, 'still serving')
  const ok = await h.req('POST', '/v2/queues/bad/messages', { body: { messages: [{ body: 'fine' }] } })
  t.equal(ok.status, 201)
})
