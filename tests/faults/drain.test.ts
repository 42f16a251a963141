/**
 * Orderly shutdown: SIGTERM to the supervisor while requests are in flight. Every in-flight
 * request gets its normal answer, new connections are refused as soon as the drain starts, the
 * supervisor exits 0 and no child is left behind.
 */
import t from 'tap'
import { alive, exited, startMissive, waitFor, within } from '../helpers/index.js'
import { RawConnection, connectError, randomProject, type RawResponse } from '../helpers/http.js'

t.test('SIGTERM drains in-flight requests, refuses new connections, exits 0', async (t) => {
  // Scrapes collected afresh: the test reads the proxy's in-flight gauge to know what it has read.
  const m = await startMissive(t, { config: { metricsCacheMs: 0 } })
  const project = randomProject('drain')
  const hdrs = { 'Client-ID': '3381af92-2b9e-11e3-b191-71861300734c', 'X-Project-ID': project }
  const q = '/v2/queues/drain'
  const put = await fetch(m.baseUrl + q, { method: 'PUT', headers: hdrs })
  t.equal(put.status, 201, 'queue created')
  const kids = await m.children()
  t.equal(kids.workers.length, 1)
  t.ok(kids.proxy, 'proxy running')
  const pids = [kids.proxy!, ...kids.workers]

  /** Requests the proxy has received and not yet answered (its gauge, less this scrape). */
  const inFlight = async (): Promise<number> => {
    const text = await (await fetch(`${m.baseUrl}/metrics`)).text()
    const line = /^missive_http_requests_in_flight(?:\{[^}]*\})? (\d+)$/m.exec(text)
    if (line === null) throw new Error('no missive_http_requests_in_flight in /metrics')
    return Number(line[1]) - 1
  }

  const postBody = (i: number, pad: number): string =>
    JSON.stringify({ messages: [{ body: { i, pad: 'x'.repeat(pad) } }, { body: { i, second: true } }] })

  // A first request on each connection proves the server accepted it (not just the kernel).
  const warm = async (conn: RawConnection): Promise<RawConnection> => {
    await conn.write(RawConnection.head('GET', `${q}/stats`, hdrs, 0))
    const r = await conn.response()
    if (r.status !== 200) throw new Error(`warm-up request: ${r.status} ${r.body}`)
    return conn
  }

  // Slow uploads: the head is in, half the body is held back, so these are in flight for sure.
  const slow = await Promise.all(
    Array.from({ length: 8 }, async (_, i) => {
      const body = Buffer.from(postBody(i, 2000))
      const conn = await warm(await RawConnection.open(m.baseUrl))
      await conn.write(RawConnection.head('POST', `${q}/messages`, hdrs, body.length) + body.subarray(0, 1000).toString('latin1'))
      return { conn, rest: body.subarray(1000) }
    }),
  )
  // Connections opened (and accepted) now, their whole request written right before SIGTERM.
  const quick = await Promise.all(Array.from({ length: 24 }, async () => warm(await RawConnection.open(m.baseUrl))))
  await waitFor(async () => (await inFlight()) >= slow.length, { what: 'the slow uploads in flight' })
  for (const s of slow) t.notOk(s.conn.closed, 'slow upload still connected')

  const bodies = quick.map((_, i) => Buffer.from(postBody(100 + i, 50_000)))
  await Promise.all(quick.map((c, i) => c.write(RawConnection.head('POST', `${q}/messages`, hdrs, bodies[i].length) + bodies[i].toString('latin1'))))
  let answered = 0
  const quickAnswers = quick.map((c) =>
    c
      .response(15_000)
      .catch((err: Error) => err)
      .finally(() => answered++),
  )
  // SIGTERM once the proxy has read every one of them (in flight, or already answered), while
  // the worker (one fsync per post) is still busy with most of them.
  await waitFor(async () => (await inFlight()) + answered >= slow.length + quick.length, { intervalMs: 2, what: 'the proxy to read every request' })
  const exit = exited(m.child)
  process.kill(m.pid, 'SIGTERM')

  // The drain has started while the slow uploads are still open: the listener is closed.
  await waitFor(async () => (await connectError(m.port)) === 'ECONNREFUSED', { timeoutMs: 8000, what: 'new connections refused' })
  t.pass('new connections refused during the drain')
  for (const s of slow) t.notOk(s.conn.closed, 'slow upload still open during the drain')
  t.equal(m.child.exitCode, null, 'supervisor still draining')

  const slowAnswers = slow.map(async (s) => {
    await s.conn.write(s.rest)
    return s.conn.response(15_000).catch((err: Error) => err)
  })
  const all: (RawResponse | Error)[] = await Promise.all([...slowAnswers, ...quickAnswers])
  const wrong = all.flatMap((r, i) => {
    const what = i < slow.length ? `slow upload ${i}` : `request ${i - slow.length}`
    if (r instanceof Error) return [`${what}: ${r.message}`]
    if (r.status !== 201 || r.json?.resources?.length !== 2) return [`${what}: ${r.status} ${r.body.slice(0, 200)}`]
    if (!/^req-/.test(r.headers['x-openstack-request-id'] ?? '')) return [`${what}: no request id`]
    return []
  })
  t.same(wrong, [], `all ${all.length} in-flight requests answered 201`)

  const code = await within(exit, 20_000)
  t.same(code, { code: 0, signal: null }, 'supervisor exits 0')
  await waitFor(() => pids.every((p) => !alive(p)), { timeoutMs: 5000, what: 'children gone' }).catch(() => undefined)
  t.same(pids.filter(alive), [], 'proxy and workers are gone')
  t.equal(await connectError(m.port), 'ECONNREFUSED', 'port closed after exit')
  for (const c of [...quick, ...slow.map((s) => s.conn)]) c.close()

  // What was acknowledged during the drain was stored.
  const again = await startMissive(t, { dataDir: m.dataDir })
  const stats = await fetch(`${again.baseUrl}${q}/stats`, { headers: hdrs })
  t.match(await stats.json(), { messages: { total: 2 * all.length } }, 'every acknowledged message stored')
})
