/**
 * Aborted uploads give their in-flight slot back: the gauge returns to idle, and a SIGTERM drain
 * has nothing to wait for (it used to wait its whole timeout after any aborted upload). Both
 * stores, whole service, aborts made with raw sockets.
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { waitFor } from '../helpers/index.js'
import { RawSocket } from './raw.js'
import { onBothStores } from './stores.js'

/** `missive_http_requests_in_flight` as the /metrics page reports it (the scrape counts itself). */
async function inflight(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text()
  const m = /^missive_http_requests_in_flight(?:\{[^}]*\})? (\d+)/m.exec(text)
  if (m === null) throw new Error('no in-flight gauge on /metrics')
  return Number(m[1])
}

const UPLOADS = 20

void onBothStores(
  t,
  'aborted uploads',
  async (t, m) => {
    const head = (i: number): string =>
      `POST /v2/queues/up/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nClient-ID: ${randomUUID()}\r\nX-Project-ID: inflight\r\n` +
      `Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"messages":[{"body":${i},`
    const sockets: RawSocket[] = []
    for (let i = 0; i < UPLOADS; i++) {
      const s = await RawSocket.open(m.port)
      await s.write(head(i))
      sockets.push(s)
    }
    // Every upload is in flight (plus the scrape itself) before any is cut short.
    await waitFor(async () => (await inflight(m.baseUrl)) === UPLOADS + 1, { what: `${UPLOADS} uploads in flight` })
    for (const s of sockets) s.destroy()
    await waitFor(async () => (await inflight(m.baseUrl)) === 1, { what: 'the in-flight gauge back to idle after the aborts' })
    // The drain timeout is ten minutes: stop() only returns in time if nothing is left to wait for.
    const exit = await m.stop('SIGTERM', 20_000)
    t.equal(exit.code, 0, 'drained and exited')
  },
  { config: { drainTimeoutMs: 600_000 } },
)
