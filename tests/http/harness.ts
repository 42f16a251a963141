/**
 * In-process harness for the HTTP tests: the real proxy (uWS, routes, validation) over a real
 * SQLite driver and catalog in a temp dir, without the RPC hop (the contract suite covers that
 * hop; tests/e2e covers the whole process tree). Each harness listens on a free port.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { SqliteCatalog } from '../../catalog/stores/sqlite.js'
import { HttpServer } from '../../proxy/app.js'
import { LongPoll } from '../../proxy/long-poll.js'
import { PooledDriver } from '../../proxy/pooled-driver.js'
import { PoolSet } from '../../proxy/pool-set.js'
import { parseConfig, type Config } from '../../shared/config.js'
import { createLogger } from '../../shared/log.js'
import { openDriver } from '../../worker/storage/index.js'
import { zaqarClient } from '../helpers/http.js'

export interface Harness {
  base: string
  config: Config
  /** Fresh per harness: tests never share data by accident. */
  project: string
  clientId: string
  /** The server's parked long-polling requests (proxy/long-poll.ts). */
  longPoll: LongPoll
  /** The server itself (its WebSocket API: `server.websocket`). */
  server: HttpServer
  /** fetch with the Zaqar headers filled in (override or delete with `headers: {X: null}`). */
  req(
    method: string,
    path: string,
    opts?: { body?: unknown; raw?: string | Uint8Array; headers?: Record<string, string | null>; timeoutMs?: number },
  ): Promise<Resp>
}

export interface Resp {
  status: number
  headers: Headers
  text: string
  json: any // eslint-disable-line @typescript-eslint/no-explicit-any
}

/**
 * `store` is the default pool's storage URI: the embedded SQLite store unless a test passes a
 * Redis URI (tests that run on both stores).
 */
export async function startHarness(
  t: { teardown(fn: () => unknown): void },
  overrides: Record<string, unknown> = {},
  store = 'sqlite:',
): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'missive-http-'))
  const config = parseConfig({ port: 0, dataDir: dir, logLevel: 'silent', ...overrides })
  const driver = await openDriver(store, { dataDir: dir, durability: 'fast' })
  const catalog = new SqliteCatalog(join(dir, 'catalog.sqlite'))
  // One pool, `default`, served by the driver opened above.
  await catalog.putPool({ name: 'default', uri: store, weight: 1, flavor: null, options: {} })
  const pools = new PoolSet({ catalog, connector: { key: () => '', open: () => [driver], close: () => {} }, defaultPool: 'default', pollMs: 0 })
  await pools.refresh()
  const log = createLogger('test', 'silent')
  const longPoll = new LongPoll({ perProject: config.longPollMaxWaitersPerProject, total: config.longPollMaxWaiters })
  const server = new HttpServer({ config, storage: new PooledDriver({ pools, log }), control: pools, log, longPoll })
  const port = await server.listen()
  t.teardown(async () => {
    await server.drain(0)
    server.close()
    pools.close()
    await driver.close()
    await catalog.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const base = `http://127.0.0.1:${port}`
  const project = `p-${randomUUID()}`
  const clientId = randomUUID()
  const client = zaqarClient(base, { project, clientId })
  return {
    base,
    config,
    project,
    clientId,
    longPoll,
    server,
    req: (method, path, opts) => client.req(method, path, opts),
  }
}

/**
 * Sends bytes as they are over a fresh TCP connection and parses the first response: for what
 * fetch will not send (no Content-Length, chunked bodies, broken framing, huge headers).
 */
export async function rawRequest(base: string, request: string | Buffer): Promise<{ status: number; head: string; body: string; json: any }> {
  const { createConnection } = await import('node:net')
  const url = new URL(base)
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host: url.hostname, port: Number(url.port) })
    let data = Buffer.alloc(0)
    const done = (): void => {
      const text = data.toString('utf8')
      const split = text.indexOf('\r\n\r\n')
      if (split < 0) return
      const head = text.slice(0, split)
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1] ?? 0)
      const len = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0)
      const body = text.slice(split + 4)
      if (Buffer.byteLength(body) < len) return
      sock.destroy()
      let json: unknown
      try {
        json = body === '' ? undefined : JSON.parse(body)
      } catch {
        json = undefined
      }
      resolve({ status, head, body, json })
    }
    sock.on('data', (chunk) => {
      data = Buffer.concat([data, chunk])
      done()
    })
    sock.on('error', reject)
    sock.on('close', () => {
      done()
      resolve({ status: 0, head: '', body: '', json: undefined })
    })
    sock.setTimeout(5000, () => sock.destroy(new Error('raw request timed out')))
    sock.write(request)
  })
}
