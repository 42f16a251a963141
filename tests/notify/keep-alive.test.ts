/**
 * Webhook connections are reused (proxy/notify/deliver.ts): a subscriber receives a run of
 * deliveries over one kept-alive connection instead of one connection each; a response with a
 * long body closes its connection instead of being read to its end. A real loopback
 * receiver counting its TCP connections; the embedded SQLite store (the connection handling does
 * not depend on the store).
 */
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { waitFor } from '../helpers/index.js'
import { startNotifying } from './harness.js'

async function receiver(t: { teardown(fn: () => unknown): void }, answer: (res: ServerResponse) => void) {
  const r = { connections: 0, requests: 0, url: '' }
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      r.requests++
      answer(res)
    })
  })
  server.on('connection', () => r.connections++)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.teardown(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))))
  return r
}

t.test('deliveries to one subscriber reuse its connection', async (t) => {
  const n = await startNotifying(t, 'sqlite:')
  const rx = await receiver(t, (res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok":true}'))
  t.equal((await n.client.req('POST', '/v2/queues/ka/subscriptions', { body: { subscriber: `${rx.url}/hook` } })).status, 201)
  t.equal((await n.client.req('POST', '/v2/queues/ka/messages', { body: { messages: Array.from({ length: 10 }, (_, i) => ({ body: i })) } })).status, 201)
  await waitFor(() => n.notifier.totals.delivered === 10, { what: '10 deliveries', timeoutMs: 30_000 })
  t.equal(rx.requests, 10)
  // One subscriber delivers one message at a time: one connection, or two when a delivery starts
  // before the previous response's end has handed its connection back (one per delivery before).
  t.ok(rx.connections >= 1 && rx.connections <= 2, `10 deliveries over ${rx.connections} connection(s)`)
})

t.test('a long response body closes the connection, unread', async (t) => {
  const n = await startNotifying(t, 'sqlite:')
  // More than the notifier reads before giving the connection up.
  const rx = await receiver(t, (res) => {
    res.writeHead(200)
    res.write('x'.repeat(64 * 1024))
    res.end()
  })
  t.equal((await n.client.req('POST', '/v2/queues/kb/subscriptions', { body: { subscriber: `${rx.url}/hook` } })).status, 201)
  t.equal((await n.client.req('POST', '/v2/queues/kb/messages', { body: { messages: [{ body: 1 }, { body: 2 }, { body: 3 }] } })).status, 201)
  await waitFor(() => n.notifier.totals.delivered === 3, { what: '3 deliveries', timeoutMs: 30_000 })
  t.equal(rx.connections, 3, 'a connection per delivery')
})
