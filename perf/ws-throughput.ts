/**
 * Messages per second posted over Zaqar's WebSocket API against the same posts over HTTP
 * (issue 16), one run against one service (`node dist/bin/missive.js serve`, default pool
 * `--store`). Each transport gets `--connections` closed loops for `--seconds`: HTTP loops post
 * on their own keep-alive connection (node:http), WebSocket loops send `message_post` frames on their own socket and wait
 * for each answer. Every loop posts `--batch` messages per request to its own queue. The two
 * transports alternate `--rounds` times so that a noisy machine affects both alike; the table
 * gives each round and the median.
 *
 * The load generator runs on the same machine as the service (two cores), so the ratio is what
 * a client on this machine gets, the client's own cost included.
 *
 *   node dist/perf/ws-throughput.js [--seconds 5] [--connections 16] [--batch 1] [--rounds 3] [--store sqlite:|redis://…]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import WebSocket from 'ws'
import { startMissive } from './lib/procs.js'

const args = process.argv.slice(2)
const opt = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback
}
const SECONDS = Number(opt('seconds', '5'))
const CONNECTIONS = Number(opt('connections', '16'))
const BATCH = Number(opt('batch', '1'))
const ROUNDS = Number(opt('rounds', '3'))
const STORE = opt('store', 'sqlite:')
const PROJECT = 'throughput'

const messages = (loop: number) => Array.from({ length: BATCH }, (_, i) => ({ ttl: 300, body: { loop, i, pad: 'x'.repeat(64) } }))

/**
 * One keep-alive HTTP/1.1 POST on `agent` (node:http: its client costs about what a WebSocket
 * frame costs, where `fetch` on Node 20 costs several times more and would measure the client).
 */
function post(agent: Agent, url: URL, headers: Record<string, string>, body: string): Promise<number> {
  return new Promise((ok, fail) => {
    const req = request(url, { method: 'POST', agent, headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)) } }, (res) => {
      res.resume()
      res.once('end', () => ok(res.statusCode ?? 0))
    })
    req.once('error', fail)
    req.end(body)
  })
}

/** Closed HTTP loops for `ms`, one keep-alive connection each; returns messages acknowledged. */
async function httpRound(base: string, ms: number): Promise<number> {
  const end = performance.now() + ms
  let acked = 0
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async (_, loop) => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 })
      const headers = { 'Client-ID': crypto.randomUUID(), 'X-Project-ID': PROJECT, 'Content-Type': 'application/json' }
      const body = JSON.stringify({ messages: messages(loop) })
      const url = new URL(`${base}/v2/queues/http-${loop}/messages`)
      try {
        while (performance.now() < end) {
          const status = await post(agent, url, headers, body)
          if (status !== 201) throw new Error(`HTTP post answered ${status}`)
          acked += BATCH
        }
      } finally {
        agent.destroy()
      }
    }),
  )
  return acked
}

/** Closed WebSocket loops for `ms`, one socket each; returns messages acknowledged. */
async function wsRound(wsUrl: string, ms: number): Promise<number> {
  const sockets = await Promise.all(
    Array.from(
      { length: CONNECTIONS },
      () =>
        new Promise<WebSocket>((ok, fail) => {
          const s = new WebSocket(wsUrl)
          s.once('open', () => ok(s))
          s.once('error', fail)
        }),
    ),
  )
  const end = performance.now() + ms
  let acked = 0
  try {
    await Promise.all(
      sockets.map(async (s, loop) => {
        const frame = JSON.stringify({
          action: 'message_post',
          headers: { 'Client-ID': crypto.randomUUID(), 'X-Project-ID': PROJECT },
          body: { queue_name: `ws-${loop}`, messages: messages(loop) },
        })
        while (performance.now() < end) {
          const answer = await new Promise<string>((ok) => {
            s.once('message', (data) => ok(String(data)))
            s.send(frame)
          })
          const status = (JSON.parse(answer) as { headers?: { status?: number } }).headers?.status
          if (status !== 201) throw new Error(`WebSocket post answered ${status}: ${answer.slice(0, 200)}`)
          acked += BATCH
        }
      }),
    )
  } finally {
    for (const s of sockets) s.close()
  }
  return acked
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'missive-ws-throughput-'))
  const svc = await startMissive({ dataDir: join(dir, 'data'), pool: STORE, durability: 'fast', env: { MISSIVE_ACCESS_LOG: 'false' } })
  const base = svc.url
  const port = svc.port
  try {
    // Warm both paths (JIT, queue creation) before measuring.
    await httpRound(base, 1000)
    await wsRound(`ws://127.0.0.1:${port}/v2/ws`, 1000)
    const http: number[] = []
    const ws: number[] = []
    for (let r = 0; r < ROUNDS; r++) {
      http.push((await httpRound(base, SECONDS * 1000)) / SECONDS)
      ws.push((await wsRound(`ws://127.0.0.1:${port}/v2/ws`, SECONDS * 1000)) / SECONDS)
    }
    const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
    console.log(`store ${STORE}, ${CONNECTIONS} connections, ${BATCH} message(s) per post, ${SECONDS} s per round`)
    console.log('| round | HTTP msgs/s | WebSocket msgs/s | WebSocket ÷ HTTP |')
    console.log('|---|---|---|---|')
    for (let r = 0; r < ROUNDS; r++) console.log(`| ${r + 1} | ${fmt(http[r]!)} | ${fmt(ws[r]!)} | ${(ws[r]! / http[r]!).toFixed(2)} |`)
    console.log(`| median | ${fmt(median(http))} | ${fmt(median(ws))} | ${(median(ws) / median(http)).toFixed(2)} |`)
  } finally {
    await svc.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
