/**
 * A property-based fuzzer over the HTTP surface (fast-check): methods, paths under v2, v1.1 and
 * elsewhere, identity and media headers (bytes that are not UTF-8 included), query strings, and
 * bodies — JSON of every shape, deep nesting, huge numbers, wrong types, raw bytes. On both
 * stores, through the whole service. Every answer must be below 500, every error a JSON
 * `{title, description}`, and the service must keep serving with the same proxy process.
 *
 * Bounded for CI: FUZZ_RUNS cases per store (default 500, a few seconds). A failure prints fast-check's seed
 * and path; replay with FUZZ_SEED=<seed> (and FUZZ_PATH=<path>).
 */
import { randomUUID } from 'node:crypto'
import fc from 'fast-check'
import t from 'tap'
import { isErrorBody, rawExchange } from './raw.js'
import { onBothStores } from './stores.js'

const RUNS = Number(process.env.FUZZ_RUNS ?? 500)
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED)
const PATH = process.env.FUZZ_PATH

/** Bytes for a header value: text, plus bytes that are not UTF-8 (never control bytes: see docs/security.md). */
const headerBytes: fc.Arbitrary<Buffer> = fc.oneof(
  fc.string({ maxLength: 40 }).map((s) => Buffer.from(s.replace(/[\x00-\x1f\x7f]/g, ''), 'utf8')),
  fc.uint8Array({ minLength: 1, maxLength: 12 }).map((a) => Buffer.from(a.map((b) => (b < 0x20 || b === 0x7f ? 0x61 : b)))),
  fc.constantFrom(Buffer.from([0x61, 0xe9, 0x62]), Buffer.from([0xff]), Buffer.from('\uFFFD'), Buffer.from('')),
)

const queueName = fc.oneof(
  fc.constantFrom('fuzz', 'fuzz-2', 'a'.repeat(64), 'a'.repeat(65), '%', '%25', '%zz', 'a%00b', '..', '.', '%C3%BC', '_dlq'),
  fc.stringMatching(/^[a-zA-Z0-9_-]{1,70}$/),
)
const id = fc.oneof(fc.uuid().map(String), fc.constantFrom('x', '0', '01a24220-e24e-7b32-a791-db2c28074b9a', ''), fc.string({ maxLength: 40 }).map(encodeURIComponent))

const path: fc.Arbitrary<string> = fc
  .tuple(
    fc.constantFrom('/v2', '/v2', '/v2', '/v1.1', '/v1', '/v3', '', '/v2/'),
    fc.oneof(
      fc.constant(''),
      fc.constantFrom('/', '/ping', '/health', '/queues', '/pools', '/flavors', '/metrics', '/admin/pools/default/stats'),
      queueName.map((q) => `/queues/${q}`),
      fc.tuple(queueName, fc.constantFrom('stats', 'purge', 'messages', 'claims', 'subscriptions')).map(([q, s]) => `/queues/${q}/${s}`),
      fc.tuple(queueName, fc.constantFrom('messages', 'claims'), id).map(([q, s, i]) => `/queues/${q}/${s}/${i}`),
      fc.tuple(fc.constantFrom('pools', 'flavors'), fc.stringMatching(/^[a-z0-9_-]{1,20}$/)).map(([k, n]) => `/${k}/${n}`),
      fc.webPath(),
    ),
  )
  .map(([prefix, rest]) => `${prefix}${rest}` || '/')

const number = fc.oneof(
  fc.integer().map(String),
  fc.constantFrom('0', '-1', '1e400', '-1e400', '1.5', '60.0', '1' + '0'.repeat(40), '-' + '9'.repeat(30), 'NaN', 'true', 'null', ''),
)

const query: fc.Arbitrary<string> = fc
  .dictionary(
    fc.oneof(fc.constantFrom('limit', 'marker', 'detailed', 'echo', 'include_claimed', 'ids', 'claim_ids', 'pop', 'with_count', 'name', 'claim_id'), fc.string({ maxLength: 8 })),
    fc.oneof(number, fc.string({ maxLength: 30 }), fc.constantFrom('true', 'false', 'TRUE', 'x'), fc.array(id, { maxLength: 5 }).map((a) => a.join(','))),
    { maxKeys: 4 },
  )
  .map((d) => {
    const parts = Object.entries(d).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    return parts.length === 0 ? '' : `?${parts.join('&')}`
  })

/** JSON text of a value that may hold huge or fractional numbers written out exactly. */
const anyJson = fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? 'null')
const numberText = fc.oneof(number.filter((n) => /^-?\d/.test(n)), fc.constantFrom('1e400', '123456789012345678901234567890', '-0', '0.1'))
const deep = fc.tuple(fc.integer({ min: 200, max: 320 }), fc.constantFrom('[', '{"a":')).map(([d, open]) => open.repeat(d) + '1' + (open === '[' ? ']' : '}').repeat(d))
const messageJson = fc
  .record({ body: fc.oneof(anyJson, deep, numberText), ttl: fc.option(numberText), delay: fc.option(numberText) }, { requiredKeys: ['body'] })
  .map(({ body, ttl, delay }) => `{"body":${body}${ttl != null ? `,"ttl":${ttl}` : ''}${delay != null ? `,"delay":${delay}` : ''}}`)
const body: fc.Arbitrary<Buffer | null> = fc.oneof(
  fc.constant(null),
  anyJson.map((s) => Buffer.from(s)),
  deep.map((s) => Buffer.from(s)),
  fc.array(messageJson, { maxLength: 5 }).map((ms) => Buffer.from(`{"messages":[${ms.join(',')}]}`)),
  fc.record({ ttl: numberText, grace: numberText }).map(({ ttl, grace }) => Buffer.from(`{"ttl":${ttl},"grace":${grace}}`)),
  fc
    .array(fc.record({ op: fc.constantFrom('add', 'replace', 'remove', 'move', 'x'), path: fc.constantFrom('/metadata/a', '/metadata/_default_message_ttl', '/x', '/metadata'), value: anyJson }), { maxLength: 3 })
    .map((ops) => Buffer.from(`[${ops.map((o) => `{"op":"${o.op}","path":"${o.path}","value":${o.value}}`).join(',')}]`)),
  fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
)

interface Case {
  method: string
  target: string
  clientId: Buffer | null
  project: Buffer | null
  contentType: string | null
  accept: string | null
  body: Buffer | null
}

const request: fc.Arbitrary<Case> = fc.record({
  method: fc.constantFrom('GET', 'GET', 'POST', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'),
  target: fc.tuple(path, query).map(([p, q]) => p + q),
  clientId: fc.oneof({ weight: 4, arbitrary: fc.uuid().map((u) => Buffer.from(u)) }, { weight: 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: headerBytes }),
  project: fc.oneof({ weight: 4, arbitrary: fc.constant(Buffer.from('fuzz-project')) }, { weight: 1, arbitrary: fc.constant(null) }, { weight: 2, arbitrary: headerBytes }),
  contentType: fc.option(fc.constantFrom('application/json', 'application/openstack-messaging-v2.0-json-patch', 'application/x-www-form-urlencoded', 'text/plain', ''), { nil: null }),
  accept: fc.option(fc.constantFrom('application/json', '*/*', 'text/html', 'application/json;q=0', ''), { nil: null }),
  body,
})

function encode(c: Case): Buffer {
  const lines: Buffer[] = [Buffer.from(`${c.method} ${c.target} HTTP/1.1\r\nHost: 127.0.0.1\r\n`)]
  const header = (name: string, value: Buffer | string | null): void => {
    if (value !== null) lines.push(Buffer.from(`${name}: `), Buffer.from(value), Buffer.from('\r\n'))
  }
  header('Client-ID', c.clientId)
  header('X-Project-ID', c.project)
  header('Content-Type', c.contentType)
  header('Accept', c.accept)
  if (c.body !== null) header('Content-Length', String(c.body.length))
  lines.push(Buffer.from('\r\n'))
  if (c.body !== null) lines.push(c.body)
  return Buffer.concat(lines)
}

void onBothStores(t, 'fuzzing the HTTP surface', async (t, m) => {
  const proxyBefore = (await m.children()).proxy
  t.ok(proxyBefore, 'the proxy runs')
  let cases = 0
  await fc.assert(
    fc.asyncProperty(request, async (c) => {
      cases++
      const r = await rawExchange(m.port, encode(c), { head: c.method === 'HEAD' })
      if (r === null) throw new Error('connection closed without an answer')
      if (r.status < 100 || r.status >= 500) throw new Error(`status ${r.status}: ${r.body.toString('utf8').slice(0, 200)}`)
      if (r.status >= 400 && c.method !== 'HEAD' && !isErrorBody(r.json)) {
        throw new Error(`error body is not {title, description}: ${r.status} ${r.body.toString('utf8').slice(0, 200)}`)
      }
    }),
    { numRuns: RUNS, ...(SEED !== undefined && { seed: SEED }), ...(PATH !== undefined && { path: PATH }) },
  )
  t.equal(cases >= RUNS, true, `${cases} cases`)
  const ping = await fetch(`${m.baseUrl}/v2/ping`, { headers: { 'Client-ID': randomUUID(), 'X-Project-ID': 'fuzz-project' } })
  t.equal(ping.status, 204, 'still serving')
  t.equal((await m.children()).proxy, proxyBefore, 'the same proxy process: it never crashed')
})
