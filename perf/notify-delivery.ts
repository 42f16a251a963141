/**
 * Webhook delivery (issue 15, docs/notifications.md): deliveries per second to a local HTTP
 * receiver, and the post latency with 0 vs 10 subscribers on the queue, in one run against one
 * service (`node dist/bin/missive.js serve`, default pool `--store`).
 *
 * 1. Post latency, interleaved rounds: `--posts` one-message posts to a queue nobody subscribes
 *    to, then as many to a queue with 10 webhook subscribers (the receiver, one path each),
 *    `--concurrency` posts in flight; after each subscribed round the run waits for its
 *    deliveries, so the unsubscribed round measures an idle notifier and the subscribed one a
 *    notifier delivering while the posts run. Also the delivery latency (post sent → receiver).
 * 2. Delivery throughput: `--burst` messages posted at once (10 per post) to the subscribed
 *    queue; deliveries/s = burst × 10 / (last delivery − first post).
 *
 * The receiver answers 200 at once (it is in this process; its cost is in the numbers). Signing
 * is on (`notification.signing_key`), as it would be in production.
 *
 * A Redis pool needs `appendonly yes` (the default durability, fast, requires it).
 *
 *   node dist/perf/notify-delivery.js [--store sqlite:|redis://…] [--rounds 5] [--posts 300]
 *       [--concurrency 4] [--burst 2000] [--subscribers 10]
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { HttpConnection } from './lib/http-client.js'
import { OpStats } from './lib/stats.js'

const args = process.argv.slice(2)
const opt = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback
}
const STORE = opt('store', 'sqlite:')
const ROUNDS = Number(opt('rounds', '5'))
const POSTS = Number(opt('posts', '300'))
const CONCURRENCY = Number(opt('concurrency', '4'))
const BURST = Number(opt('burst', '2000'))
const SUBSCRIBERS = Number(opt('subscribers', '10'))
const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '..')
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const CLIENT = '3381af92-2b9e-11e3-b191-71861300734c'
const PROJECT = 'notify-bench'
const jsonHeaders = { 'Client-ID': CLIENT, 'X-Project-ID': PROJECT, 'Content-Type': 'application/json' }

/** Waits for `cond`, polling every 5 ms, for at most `ms` (a bench bound, not a test). */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

async function main(): Promise<void> {
  // The receiver: counts deliveries, records post → delivery latency from the body's send time.
  let delivered = 0
  let lastDelivery = 0
  const deliveryLatency = new OpStats()
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const now = performance.now()
      delivered++
      lastDelivery = now
      const sent = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { body?: { sent?: number } }).body?.sent
      if (typeof sent === 'number') deliveryLatency.record((now - sent) * 1000, true, 200)
      res.writeHead(200).end()
    })
  })
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r))
  const rx = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`

  const dir = mkdtempSync(join(tmpdir(), 'missive-notify-bench-'))
  const configFile = join(dir, 'missive.json')
  writeFileSync(configFile, JSON.stringify({ notification: { allow_hosts: ['127.0.0.1'], signing_key: 'bench-signing-key' } }))
  const port = 20000 + Math.floor(Math.random() * 20000)
  const base = `http://127.0.0.1:${port}`
  const child = spawn(process.execPath, [join(root, 'bin/missive.js'), 'serve'], {
    env: {
      ...process.env,
      MISSIVE_CONFIG: configFile,
      MISSIVE_PORT: String(port),
      MISSIVE_DATA_DIR: join(dir, 'data'),
      MISSIVE_DEFAULT_POOL: STORE,
      MISSIVE_DURABILITY: 'fast',
      MISSIVE_ACCESS_LOG: 'false',
      MISSIVE_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${base}/v2/ping`, { headers: jsonHeaders })).status === 204) break
      } catch {
        // not up yet
      }
      if (i > 300 || child.exitCode !== null) throw new Error('missive did not start')
      await sleep(100)
    }
    for (const q of ['nb-0', 'nb-10']) {
      const r = await fetch(`${base}/v2/queues/${q}`, { method: 'PUT', headers: jsonHeaders, body: '{}' })
      if (r.status !== 201 && r.status !== 204) throw new Error(`PUT ${q}: ${r.status}`)
    }
    for (let i = 0; i < SUBSCRIBERS; i++) {
      const r = await fetch(`${base}/v2/queues/nb-10/subscriptions`, { method: 'POST', headers: jsonHeaders, body: JSON.stringify({ subscriber: `${rx}/s${i}`, ttl: 86400 }) })
      if (r.status !== 201) throw new Error(`subscribe: ${r.status} ${await r.text()}`)
    }

    const conns = Array.from({ length: CONCURRENCY }, () => new HttpConnection('127.0.0.1', port))
    const head = (queue: string): string =>
      `POST /v2/queues/${queue}/messages HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nClient-ID: ${CLIENT}\r\nX-Project-ID: ${PROJECT}\r\nContent-Type: application/json`
    /** `n` posts of `perPost` messages to `queue`, CONCURRENCY in flight, each recorded in `stats`. */
    const postRound = async (queue: string, n: number, perPost: number, stats: OpStats | undefined): Promise<void> => {
      const h = head(queue)
      let next = 0
      await Promise.all(
        conns.map(async (c) => {
          while (next < n) {
            next++
            const sent = performance.now()
            const body = Buffer.from(JSON.stringify({ messages: Array.from({ length: perPost }, (_, i) => ({ body: { sent, i }, ttl: 3600 })) }))
            const r = await c.request(h, body)
            stats?.record((performance.now() - sent) * 1000, r.status === 201, r.status)
          }
        }),
      )
    }

    // Warm-up: connections, JIT, the notifier's first catalog reads.
    await postRound('nb-0', 200, 1, undefined)
    await postRound('nb-10', 20, 1, undefined)
    await until(() => delivered === 20 * SUBSCRIBERS, 60_000, 'the warm-up deliveries')
    deliveryLatency.hist.reset()
    deliveryLatency.count = 0

    // 1. Post latency, 0 vs N subscribers, interleaved rounds.
    const post0 = new OpStats()
    const postN = new OpStats()
    let expected = delivered
    for (let r = 0; r < ROUNDS; r++) {
      await postRound('nb-0', POSTS, 1, post0)
      await postRound('nb-10', POSTS, 1, postN)
      expected += POSTS * SUBSCRIBERS
      await until(() => delivered >= expected, 120_000, `round ${r}'s deliveries`)
    }
    const latency = deliveryLatency.summary(1)

    // 2. Delivery throughput: a burst, then every delivery.
    const before = delivered
    const started = performance.now()
    await postRound('nb-10', Math.ceil(BURST / 10), 10, undefined)
    const posted = performance.now()
    const want = before + Math.ceil(BURST / 10) * 10 * SUBSCRIBERS
    await until(() => delivered >= want, 300_000, 'the burst deliveries')
    const seconds = (lastDelivery - started) / 1000
    for (const c of conns) c.close()

    const s0 = post0.summary(1)
    const sN = postN.summary(1)
    const fmt = (s: ReturnType<OpStats['summary']>): string =>
      `n=${s.count} p50 ${s.p50.toFixed(2)} p90 ${s.p90.toFixed(2)} p99 ${s.p99.toFixed(2)} max ${s.max.toFixed(2)}${Object.keys(s.failures).length > 0 ? ` failures ${JSON.stringify(s.failures)}` : ''}`
    const out = {
      store: STORE,
      subscribers: SUBSCRIBERS,
      concurrency: CONCURRENCY,
      postLatencyMs: { zeroSubscribers: s0, withSubscribers: sN },
      deliveryLatencyMs: { p50: latency.p50, p90: latency.p90, p99: latency.p99, max: latency.max, count: latency.count },
      burst: { messages: Math.ceil(BURST / 10) * 10, deliveries: want - before, postSeconds: (posted - started) / 1000, seconds, deliveriesPerSecond: Math.round((want - before) / seconds) },
    }
    process.stdout.write(`store ${STORE}, ${CONCURRENCY} posts in flight, ${ROUNDS} × ${POSTS} one-message posts per queue\n`)
    process.stdout.write(`  post latency, 0 subscribers  (ms): ${fmt(s0)}\n`)
    process.stdout.write(`  post latency, ${SUBSCRIBERS} subscribers (ms): ${fmt(sN)}\n`)
    process.stdout.write(`  delivery latency post → receiver (ms): p50 ${latency.p50.toFixed(1)} p90 ${latency.p90.toFixed(1)} p99 ${latency.p99.toFixed(1)} max ${latency.max.toFixed(1)}\n`)
    process.stdout.write(
      `  burst: ${out.burst.messages} messages × ${SUBSCRIBERS} subscribers = ${out.burst.deliveries} deliveries in ${seconds.toFixed(2)} s (posts took ${out.burst.postSeconds.toFixed(2)} s): ${out.burst.deliveriesPerSecond} deliveries/s\n`,
    )
    process.stdout.write(`${JSON.stringify(out)}\n`)
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await new Promise((r) => child.once('exit', r))
    }
    receiver.closeAllConnections()
    receiver.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`notify-delivery: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
