/**
 * Webhook and mail delivery (docs/notifications.md, "Delivery"): every message to every
 * subscriber, Zaqar's body, the signature, retries on the queue's or subscription's
 * `_retry_policy` then the dead letter, a hanging subscriber not delaying another, `mailto:`
 * through a sendmail-compatible command. A real HTTP receiver on a loopback port; the default
 * pool on SQLite and on Redis.
 */
import { createHmac } from 'node:crypto'
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { startRedis, tempDir, waitFor } from '../helpers/index.js'
import { startNotifying, startReceiver } from './harness.js'

const sign = (secret: string, body: string): string => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`

for (const store of ['sqlite', 'redis'] as const) {
  const uri = async (t: { teardown(fn: () => unknown): void }): Promise<string> => (store === 'sqlite' ? 'sqlite:' : (await startRedis(t, { appendfsync: 'everysec' })).url)

  t.test(`${store}: every message reaches every subscriber, signed`, async (t) => {
    const n = await startNotifying(t, await uri(t))
    const rx = await startReceiver(t)
    const S = '/v2/queues/orders/subscriptions'
    const a = await n.client.req('POST', S, { body: { subscriber: `${rx.url}/a`, options: { post_headers: { 'X-Tenant': 'acme' } } } })
    const b = await n.client.req('POST', S, { body: { subscriber: `${rx.url}/b` } })
    t.equal(a.status, 201)
    t.match(a.json.signing_secret, /^[0-9a-f]{64}$/)
    const ids: string[] = []
    for (const messages of [[{ body: { n: 1 }, ttl: 300 }], [{ body: 'two' }, { body: [3] }]]) {
      const r = await n.client.req('POST', '/v2/queues/orders/messages', { body: { messages } })
      t.equal(r.status, 201)
      ids.push(...r.json.resources.map((h: string) => h.split('/').pop()))
    }
    await waitFor(() => rx.received.length === 6, { what: '6 deliveries', timeoutMs: 30_000 })
    for (const [path, sub] of [['/a', a], ['/b', b]] as const) {
      const got = rx.received.filter((r) => r.path === path)
      t.same(got.map((r) => JSON.parse(r.body).id), ids, `${path}: every message, in order`)
      const first = JSON.parse(got[0]!.body)
      t.same(first, { body: { n: 1 }, ttl: 300, id: ids[0], Message_Type: 'Notification', queue_name: 'orders' })
      for (const r of got) {
        t.equal(r.headers['content-type'], 'application/json')
        t.equal(r.headers['x-missive-signature'], sign(sub.json.signing_secret, r.body), `${path}: the signature verifies with its secret`)
      }
    }
    t.equal(rx.received.find((r) => r.path === '/a')!.headers['x-tenant'], 'acme', 'post_headers are sent')
    t.not(a.json.signing_secret, b.json.signing_secret, 'one secret per subscription')
    // Another subscription's secret does not verify this one's requests.
    const toB = rx.received.find((r) => r.path === '/b')!
    t.not(toB.headers['x-missive-signature'], sign(a.json.signing_secret, toB.body))
    // A message posted to another queue reaches nobody here.
    await n.client.req('POST', '/v2/queues/other/messages', { body: { messages: [{ body: 'x' }] } })
    await n.client.req('POST', '/v2/queues/orders/messages', { body: { messages: [{ body: 'last' }] } })
    await waitFor(() => rx.received.length === 8, { what: '8 deliveries', timeoutMs: 30_000 })
    t.notOk(rx.received.some((r) => JSON.parse(r.body).body === 'x'))
    t.equal(n.notifier.totals.delivered, 8)
  })

  t.test(`${store}: retries follow the retry policy, then the dead letter`, async (t) => {
    const n = await startNotifying(t, await uri(t))
    const rx = await startReceiver(t)
    // Fails 4 times, then answers.
    rx.on('/flaky', (_r, k) => (k <= 4 ? 500 : 200))
    rx.on('/dead', () => 503)
    const policy = { retries_with_no_delay: 1, minimum_delay_retries: 2, minimum_delay: 1, maximum_delay: 11, maximum_delay_retries: 1, retry_backoff_function: 'linear' }
    // The queue's policy applies to a subscription without its own.
    t.equal((await n.client.req('PUT', '/v2/queues/r', { body: { _retry_policy: policy } })).status, 201)
    t.equal((await n.client.req('POST', '/v2/queues/r/subscriptions', { body: { subscriber: `${rx.url}/flaky` } })).status, 201)
    t.equal((await n.client.req('POST', '/v2/queues/r/messages', { body: { messages: [{ body: 1 }] } })).status, 201)
    await waitFor(() => rx.received.length === 1, { what: 'the 5th attempt', timeoutMs: 30_000 })
    // Zaqar's phases: 1 with no delay, 2 at minimum_delay, then linear range(1, 11, 5) = 1, 6, then maximum_delay.
    t.same(n.sleeps, [0, 1000, 1000, 1000], '4 failures: waits of the schedule, in order')
    t.equal(n.notifier.totals.failedAttempts, 4)

    // A subscription's own policy; a receiver that never recovers: every retry, then the dead letter.
    n.sleeps.length = 0
    t.equal((await n.client.req('POST', '/v2/queues/d/subscriptions', { body: { subscriber: `${rx.url}/dead`, options: { _retry_policy: policy } } })).status, 201)
    t.equal((await n.client.req('POST', '/v2/queues/d/messages', { body: { messages: [{ body: 'lost' }] } })).status, 201)
    await waitFor(() => n.notifier.totals.deadLettered === 1, { what: 'the dead letter', timeoutMs: 30_000 })
    t.same(n.sleeps, [0, 1000, 1000, 1000, 6000, 11000], 'the whole schedule: 7 attempts')
    t.equal(n.notifier.totals.delivered, 1)
  })

  t.test(`${store}: a hanging subscriber delays neither the post nor another subscriber`, async (t) => {
    const n = await startNotifying(t, await uri(t), { timeout_ms: 600_000 })
    const rx = await startReceiver(t)
    rx.on('/hang', () => 'hang')
    const S = '/v2/queues/h/subscriptions'
    t.equal((await n.client.req('POST', S, { body: { subscriber: `${rx.url}/hang` } })).status, 201)
    t.equal((await n.client.req('POST', S, { body: { subscriber: `${rx.url}/live` } })).status, 201)
    for (let i = 0; i < 3; i++) t.equal((await n.client.req('POST', '/v2/queues/h/messages', { body: { messages: [{ body: i }] } })).status, 201, 'the post answers')
    await waitFor(() => rx.received.filter((r) => r.path === '/live').length === 3 && rx.hanging === 1, {
      what: 'the live subscriber gets all 3 while the hanging one holds its first request',
      timeoutMs: 30_000,
    })
    t.equal(rx.hanging, 1, 'the hanging subscriber still holds its first request')
    t.notOk(rx.received.some((r) => r.path === '/hang'), 'and has answered nothing')
    t.same(rx.received.map((r) => JSON.parse(r.body).body), [0, 1, 2])
  })
}

t.test('mailto: through a sendmail-compatible command', async (t) => {
  const dir = await tempDir(t, 'missive-mail-')
  const script = join(dir, 'fake-sendmail')
  const out = join(dir, 'mail.txt')
  writeFileSync(script, `#!/bin/sh\ncat >> '${out}'\necho "ARGS: $*" >> '${out}'\n`)
  chmodSync(script, 0o755)
  const m = await startNotifying(t, 'sqlite:', { smtp_command: `${script} -t -oi` })
  t.equal((await m.client.req('POST', '/v2/queues/mail/subscriptions', { body: { subscriber: 'mailto:ops@example.com?subject=Orders', options: { from: 'missive@example.com' } } })).status, 201)
  t.equal((await m.client.req('POST', '/v2/queues/mail/messages', { body: { messages: [{ body: { order: 7 } }] } })).status, 201)
  const text = await waitFor(
    () => {
      try {
        const s = readFileSync(out, 'utf8')
        return s.includes('ARGS:') ? s : undefined
      } catch {
        return undefined
      }
    },
    { what: 'the mail', timeoutMs: 30_000 },
  )
  t.match(text, /^To: ops@example\.com\r\nFrom: missive@example\.com\r\nSubject: Orders\r\n/)
  t.match(text, /"body":\{"order":7\}/)
  t.match(text, /"queue_name":"mail"/)
  t.match(text, /ARGS: -t -oi/)
  // Counted once the command exited 0 (the file is written before that).
  await waitFor(() => m.notifier.totals.delivered === 1, { what: 'the command to exit 0', timeoutMs: 30_000 })
  t.equal(m.notifier.totals.deadLettered, 0)
})
