/**
 * In-process proxy with a notifier, and a real HTTP receiver (node:http on a loopback port), for
 * the delivery tests. Like tests/http/harness.ts, plus the notifier wired as proxy/main.ts wires it.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SqliteCatalog } from '../../catalog/stores/sqlite.js'
import { HttpServer } from '../../proxy/app.js'
import { Notifier } from '../../proxy/notify/notifier.js'
import { PooledDriver } from '../../proxy/pooled-driver.js'
import { PoolSet } from '../../proxy/pool-set.js'
import { parseConfig } from '../../shared/config.js'
import { createLogger } from '../../shared/log.js'
import { openDriver } from '../../worker/storage/index.js'
import { zaqarClient, type ZaqarClient } from '../helpers/http.js'

export interface Notifying {
  client: ZaqarClient
  catalog: SqliteCatalog
  notifier: Notifier
  /** The proxy's message store (its `queueQuota` can be set). */
  storage: PooledDriver
  /** The delays (ms) the notifier asked to wait before retries, in order. */
  sleeps: number[]
  dir: string
}

/**
 * `serve: false`: the proxy has no notifier (another process delivers: the kill test). `dir`: the
 * data directory to use (default: a new temp dir).
 */
export async function startNotifying(
  t: { teardown(fn: () => unknown): void },
  store: string,
  notification: Record<string, unknown> = {},
  opts: { serve?: boolean; config?: Record<string, unknown>; clock?: () => number } = {},
): Promise<Notifying> {
  const dir = mkdtempSync(join(tmpdir(), 'missive-notify-'))
  const config = parseConfig({ port: 0, dataDir: dir, logLevel: 'silent', ...opts.config, notification: { signing_key: 'test-signing-key', allow_hosts: ['127.0.0.1'], ...notification } })
  const driver = await openDriver(store, { dataDir: dir, durability: 'fast' })
  const catalog = new SqliteCatalog(join(dir, 'catalog.sqlite'))
  await catalog.putPool({ name: 'default', uri: store, weight: 1, flavor: null, options: {} })
  const pools = new PoolSet({ catalog, connector: { key: () => '', open: () => [driver], close: () => {} }, defaultPool: 'default', pollMs: 0 })
  await pools.refresh()
  const log = createLogger('test', 'silent')
  const storage = new PooledDriver({ pools, log })
  const sleeps: number[] = []
  // Retries wait for nothing: the schedule is recorded and asserted instead of timed.
  const notifier = new Notifier({ catalog, storage, config, log, sleep: async (ms) => void sleeps.push(ms), ...(opts.clock && { clock: opts.clock }) })
  const server = new HttpServer({ config, storage, control: pools, log, ...(opts.serve !== false && { notifier }) })
  const port = await server.listen()
  t.teardown(async () => {
    notifier.close()
    await server.drain(0)
    server.close()
    pools.close()
    await driver.close()
    await catalog.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return { catalog, storage, client: zaqarClient(`http://127.0.0.1:${port}`, { project: `p-${randomUUID()}`, clientId: randomUUID() }), notifier, sleeps, dir }
}

export interface Received {
  path: string
  headers: IncomingMessage['headers']
  body: string
}

/** What the receiver does with a request to a path: answer a status, or hold it open forever. */
export type Behaviour = (req: Received, n: number) => number | 'hang'

export interface Receiver {
  url: string
  /** Requests answered, in arrival order. */
  received: Received[]
  /** Requests held open now. */
  hanging: number
  /** Sets the behaviour of one path (default: 200). */
  on(path: string, b: Behaviour): void
}

export async function startReceiver(t: { teardown(fn: () => unknown): void }): Promise<Receiver> {
  const behaviours = new Map<string, Behaviour>()
  const counts = new Map<string, number>()
  const held = new Set<ServerResponse>()
  const r: Receiver = {
    url: '',
    received: [],
    hanging: 0,
    on: (path, b) => void behaviours.set(path, b),
  }
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const got: Received = { path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') }
      const n = (counts.get(got.path) ?? 0) + 1
      counts.set(got.path, n)
      const b = behaviours.get(got.path)?.(got, n) ?? 200
      if (b === 'hang') {
        held.add(res)
        r.hanging++
        res.on('close', () => {
          held.delete(res)
          r.hanging--
        })
        return
      }
      if (b >= 200 && b < 300) r.received.push(got)
      res.writeHead(b).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const res of held) res.destroy()
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return r
}

const DELIVERER = fileURLToPath(new URL('./fixtures/notifier-proc.ts', import.meta.url))

/**
 * A process that delivers the subscriptions of the catalog in `dir` on `store`
 * (fixtures/notifier-proc.ts), killed at the end of the test if still running.
 */
export function startDeliverer(t: { teardown(fn: () => unknown): void }, dir: string, store: string): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', DELIVERER, dir, store], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  return child
}
