/**
 * Messages per second posted over Zaqar's WebSocket API against the same posts over HTTP
 * (issue 16), one run against one service (`node dist/bin/missive.js serve`, default pool
 * `--store`). Each transport gets `--connections` closed loops for `--seconds`: HTTP loops post
 * with keep-alive `fetch`, WebSocket loops send `message_post` frames on their own socket and wait
 * for each answer. Every loop posts `--batch` messages per request to its own queue. The two
 * transports alternate `--rounds` times so that a noisy machine affects both alike; the table
 * gives each round and the median.
 *
 * The load generator runs on the same machine and its client cost differs per transport (a
 * WebSocket frame costs the client less than a fetch), so the ratio is what a client on this
 * machine gets, not the server's cost alone.
 *
 *   node dist/perf/ws-throughput.js [--seconds 5] [--connections 16] [--batch 1] [--rounds 3] [--store sqlite:|redis://…]
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
const SECONDS = Number(opt('seconds', '5'))
const CONNECTIONS = Number(opt('connections', '16'))
const BATCH = Number(opt('batch', '1'))
const ROUNDS = Number(opt('rounds', '3'))
const STORE = opt('store', 'sqlite:')
const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '..')
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const PROJECT = 'throughput'

const messages = (loop: number) => Array.from({ length: BATCH }, (_, i) => ({ ttl: 300, body: { loop, i, pad: 'x'.repeat(64) } }))

/** Closed HTTP loops for `ms`; returns messages acknowledged. */
async function httpRound(base: string, ms: number): Promise<number> {
  const end = performance.now() + ms
  let acked = 0
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async (_, loop) => {
      const headers = { 'Client-ID': crypto.randomUUID(), 'X-Project-ID': PROJECT, 'Content-Type': 'application/json' }
      const body = JSON.stringify({ messages: messages(loop) })
      while (performance.now() < end) {
        const r = await fetch(`${base}/v2/queues/http-${loop}/messages`, { method: 'POST', headers, body })
        await r.arrayBuffer()
        if (r.status !== 201) throw new Error(`HTTP post answered ${r.status}`)
        acked += BATCH
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
  const port = 20000 + Math.floor(Math.random() * 20000)
  const base = `http://127.0.0.1:${port}`
  const child = spawn(process.execPath, [join(root, 'bin/missive.js'), 'serve'], {
    env: { ...process.env, MISSIVE_PORT: String(port), MISSIVE_DATA_DIR: join(dir, 'data'), MISSIVE_DEFAULT_POOL: STORE, MISSIVE_DURABILITY: 'fast', MISSIVE_ACCESS_LOG: 'false', MISSIVE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${base}/v2/ping`, { headers: { 'Client-ID': crypto.randomUUID(), 'X-Project-ID': PROJECT } })).status === 204) break
      } catch {
        // not up yet
      }
      if (i > 300) throw new Error('missive did not start')
      await sleep(100)
    }
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
    child.kill('SIGTERM')
    await new Promise((r) => child.once('exit', r))
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
