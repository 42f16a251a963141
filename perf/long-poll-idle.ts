/**
 * What idle long-polling requests cost (docs/api.md, "Long polling"): starts a whole Missive
 * (`node dist/bin/missive.js serve`, default pool `--store`, SQLite unless a Redis URI is given),
 * parks `--waiters` claims with `wait=60` (each on its own keep-alive connection, spread over
 * 100 queues), and reports the proxy's RSS before and after, and its CPU time over `--idle`
 * seconds while they all wait. Then one post per queue and how long until every queue's first
 * waiter answered. A measurement, not a test.
 *
 * With `--ws`, the waiters are WebSocket connections subscribed to the queues instead (push,
 * docs/websocket.md), and the post is followed until every socket got its push.
 *
 *   node dist/perf/long-poll-idle.js [--waiters 10000] [--idle 10] [--store sqlite:|redis://…] [--ws]
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'

const args = process.argv.slice(2)
const opt = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback
}
const WAITERS = Number(opt('waiters', '10000'))
const IDLE_S = Number(opt('idle', '10'))
const STORE = opt('store', 'sqlite:')
const WS = args.includes('--ws')
const QUEUES = 100
const PROJECT = 'idle-waiters'
const CLIENT = '3b5e1c52-7d43-4d4c-9d8a-2d1f3f0e6a11'

/** dist/, where this file runs from. */
const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '..')
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** utime + stime of `pid` in clock ticks, and its RSS in KiB (/proc). */
function usage(pid: number): { ticks: number; rssKiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(fields[11]) + Number(fields[12])
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!
  return { ticks, rssKiB: Number(rss) }
}

/** The supervisor's child running proxy/main. */
function proxyPid(supervisor: number): number | undefined {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === supervisor && readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('proxy/main')) return Number(d)
    } catch {
      // gone
    }
  }
  return undefined
}

function request(port: number, method: string, path: string, body = ''): Promise<{ sock: net.Socket; answer: Promise<string> }> {
  return new Promise((resolveConn, reject) => {
    const sock = net.createConnection({ host: '127.0.0.1', port }, () => {
      sock.write(
        `${method} ${path} HTTP/1.1\r\nHost: x\r\nClient-ID: ${CLIENT}\r\nX-Project-ID: ${PROJECT}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      )
      const answer = new Promise<string>((done) => sock.once('data', (d) => done(d.toString('latin1').slice(0, 12))))
      resolveConn({ sock, answer })
    })
    sock.on('error', reject)
  })
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'missive-idle-'))
  const config = join(dir, 'config.json')
  writeFileSync(
    config,
    JSON.stringify({
      longPollMaxWait: 120,
      longPollMaxWaitersPerProject: WAITERS,
      longPollMaxWaiters: WAITERS,
      wsMaxSockets: WAITERS,
      wsMaxSocketsPerProject: WAITERS,
      accessLog: false,
      logLevel: 'warn',
    }),
  )
  const port = 20000 + Math.floor(Math.random() * 20000)
  const child = spawn(process.execPath, [join(root, 'bin/missive.js'), 'serve'], {
    env: { ...process.env, MISSIVE_CONFIG: config, MISSIVE_PORT: String(port), MISSIVE_DATA_DIR: join(dir, 'data'), MISSIVE_DEFAULT_POOL: STORE, MISSIVE_DURABILITY: 'fast' },
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  try {
    let proxy: number | undefined
    for (let i = 0; i < 300 && proxy === undefined; i++) {
      await sleep(100)
      proxy = proxyPid(child.pid!)
      if (proxy !== undefined) {
        try {
          await (await request(port, 'GET', '/v2/ping')).answer
        } catch {
          proxy = undefined
        }
      }
    }
    if (proxy === undefined) throw new Error('missive did not start')
    for (let q = 0; q < QUEUES; q++) (await request(port, 'PUT', `/v2/queues/idle-${q}`)).sock.destroy()
    await sleep(1000)
    const before = usage(proxy)
    const socks: net.Socket[] = []
    const answers: Promise<string>[] = []
    if (WS) return await subscribers(port, proxy, before)
    for (let i = 0; i < WAITERS; i++) {
      const { sock, answer } = await request(port, 'POST', `/v2/queues/idle-${i % QUEUES}/claims?wait=60&limit=1`, '{"ttl":60}')
      socks.push(sock)
      answers.push(answer)
    }
    // Let the last ones park and the heap settle before the idle window.
    await sleep(2000)
    const parked = usage(proxy)
    await sleep(IDLE_S * 1000)
    const idle = usage(proxy)
    const hz = 100
    process.stdout.write(
      `${WAITERS} waiters on ${STORE}: proxy RSS ${(before.rssKiB / 1024).toFixed(1)} MiB before, ${(parked.rssKiB / 1024).toFixed(1)} MiB parked ` +
        `(+${((parked.rssKiB - before.rssKiB) / WAITERS).toFixed(2)} KiB each); CPU while idle ${IDLE_S} s: ${((idle.ticks - parked.ticks) / hz).toFixed(2)} s ` +
        `(${((100 * (idle.ticks - parked.ticks)) / hz / IDLE_S).toFixed(2)} % of a core); RSS after idle ${(idle.rssKiB / 1024).toFixed(1)} MiB\n`,
    )
    const started = performance.now()
    const firsts = answers.slice(0, QUEUES)
    for (let q = 0; q < QUEUES; q++) {
      const { sock } = await request(port, 'POST', `/v2/queues/idle-${q}/messages`, '{"messages":[{"body":1}]}')
      socks.push(sock)
    }
    const statuses = await Promise.all(firsts)
    process.stdout.write(
      `one post per queue: the first waiter of each of ${QUEUES} queues answered (${new Set(statuses).size === 1 ? statuses[0] : statuses.join()}) ` +
        `${(performance.now() - started).toFixed(0)} ms after the first post was sent; still parked: ${WAITERS - QUEUES}\n`,
    )
    for (const s of socks) s.destroy()
  } finally {
    child.kill('SIGTERM')
    await new Promise((r) => child.once('exit', r))
    rmSync(dir, { recursive: true, force: true })
  }
}

/** `--ws`: WAITERS sockets subscribed to the 100 queues, idle, then one post per queue. */
async function subscribers(port: number, proxy: number, before: { ticks: number; rssKiB: number }): Promise<void> {
  const sockets: WebSocket[] = []
  let pushes = 0
  let answered = 0
  for (let i = 0; i < WAITERS; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v2/ws`)
    await new Promise((r, j) => ws.once('open', r).once('error', j))
    ws.on('message', (data: Buffer) => {
      if (data.includes('"Notification"')) pushes++
      else answered++
    })
    ws.send(JSON.stringify({ action: 'subscription_create', headers: { 'Client-ID': CLIENT, 'X-Project-ID': PROJECT }, body: { queue_name: `idle-${i % QUEUES}` } }))
    sockets.push(ws)
  }
  while (answered < WAITERS) await sleep(50)
  await sleep(2000)
  const parked = usage(proxy)
  await sleep(IDLE_S * 1000)
  const idle = usage(proxy)
  const hz = 100
  process.stdout.write(
    `${WAITERS} subscribed WebSockets on ${STORE}: proxy RSS ${(before.rssKiB / 1024).toFixed(1)} MiB before, ${(parked.rssKiB / 1024).toFixed(1)} MiB connected ` +
      `(+${((parked.rssKiB - before.rssKiB) / WAITERS).toFixed(2)} KiB each); CPU while idle ${IDLE_S} s: ${((idle.ticks - parked.ticks) / hz).toFixed(2)} s ` +
      `(${((100 * (idle.ticks - parked.ticks)) / hz / IDLE_S).toFixed(2)} % of a core)\n`,
  )
  const started = performance.now()
  for (let q = 0; q < QUEUES; q++) (await request(port, 'POST', `/v2/queues/idle-${q}/messages`, '{"messages":[{"body":1}]}')).sock.destroy()
  while (pushes < WAITERS) await sleep(5)
  process.stdout.write(`one post per queue: all ${WAITERS} sockets had their push ${(performance.now() - started).toFixed(0)} ms after the first post was sent\n`)
  for (const ws of sockets) ws.terminate()
}

main().catch((err: unknown) => {
  process.stderr.write(`long-poll-idle: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
