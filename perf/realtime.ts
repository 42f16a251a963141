/**
 * End-to-end latency, post → consumer, for the three ways a consumer can wait (issue 16): a claim
 * loop polling every 100 ms, long-polling claims (`wait=20`), and a WebSocket push subscription,
 * in one run against one service (`node dist/bin/missive.js serve`, default pool `--store`).
 * A producer posts one message every `--interval` ms carrying its send time; each consumer
 * records now − send time when the message reaches it. Prints p50/p99/max per mode. Light load
 * (one message per interval): a latency measurement, not a throughput benchmark.
 *
 *   node dist/perf/realtime.js [--messages 300] [--interval 20] [--store sqlite:|redis://…]
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'

const args = process.argv.slice(2)
const opt = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback
}
const MESSAGES = Number(opt('messages', '300'))
const INTERVAL = Number(opt('interval', '20'))
const STORE = opt('store', 'sqlite:')
const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '..')
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const headers = (client: string) => ({ 'Client-ID': client, 'X-Project-ID': 'realtime', 'Content-Type': 'application/json' })

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'missive-realtime-'))
  const port = 20000 + Math.floor(Math.random() * 20000)
  const base = `http://127.0.0.1:${port}`
  const child = spawn(process.execPath, [join(root, 'bin/missive.js'), 'serve'], {
    env: { ...process.env, MISSIVE_PORT: String(port), MISSIVE_DATA_DIR: join(dir, 'data'), MISSIVE_DEFAULT_POOL: STORE, MISSIVE_DURABILITY: 'fast', MISSIVE_ACCESS_LOG: 'false', MISSIVE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${base}/v2/ping`, { headers: headers(crypto.randomUUID()) })).status === 204) break
      } catch {
        // not up yet
      }
      if (i > 300) throw new Error('missive did not start')
      await sleep(100)
    }
    const latencies: Record<string, number[]> = { poll100ms: [], longPoll: [], push: [] }
    let running = true
    const record = (mode: string, bodies: { sent: number }[]): void => {
      const now = performance.now()
      for (const b of bodies) latencies[mode]!.push(now - b.sent)
    }
    // Each consumer has its own queue; the producer posts each message to all three at once.
    const claim = async (queue: string, query: string): Promise<{ sent: number }[]> => {
      const r = await fetch(`${base}/v2/queues/${queue}/claims?limit=20${query}`, { method: 'POST', headers: headers(crypto.randomUUID()), body: '{"ttl":60}' })
      if (r.status === 204) return []
      return ((await r.json()) as { messages: { body: { sent: number } }[] }).messages.map((m) => m.body)
    }
    const poller = (async () => {
      while (running) {
        const got = await claim('rt-poll', '')
        if (got.length > 0) record('poll100ms', got)
        else await sleep(100)
      }
    })()
    const longPoller = (async () => {
      while (running) record('longPoll', await claim('rt-long', '&wait=2'))
    })()
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v2/ws`)
    await new Promise((r, j) => ws.once('open', r).once('error', j))
    ws.on('message', (data: Buffer) => {
      const v = JSON.parse(data.toString()) as { Message_Type?: string; body: { sent: number } }
      if (v.Message_Type === 'Notification') record('push', [v.body])
    })
    ws.send(JSON.stringify({ action: 'subscription_create', headers: headers(crypto.randomUUID()), body: { queue_name: 'rt-push' } }))
    await sleep(500)

    const producer = crypto.randomUUID()
    for (let i = 0; i < MESSAGES; i++) {
      const sent = performance.now()
      const body = JSON.stringify({ messages: [{ body: { sent, i } }] })
      await Promise.all(['rt-poll', 'rt-long', 'rt-push'].map((q) => fetch(`${base}/v2/queues/${q}/messages`, { method: 'POST', headers: headers(producer), body })))
      await sleep(Math.max(0, INTERVAL - (performance.now() - sent)))
    }
    await sleep(1500)
    running = false
    await Promise.all([poller, longPoller])
    ws.close()
    process.stdout.write(`${MESSAGES} messages, one every ${INTERVAL} ms, store ${STORE}; latency post → consumer (ms):\n`)
    for (const [mode, xs] of Object.entries(latencies)) {
      const s = [...xs].sort((a, b) => a - b)
      process.stdout.write(
        `  ${mode.padEnd(10)} n=${s.length} p50 ${percentile(s, 50).toFixed(1)} p99 ${percentile(s, 99).toFixed(1)} max ${s[s.length - 1]!.toFixed(1)}\n`,
      )
    }
  } finally {
    child.kill('SIGTERM')
    await new Promise((r) => child.once('exit', r))
    rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`realtime: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
