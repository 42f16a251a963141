/**
 * A small Zaqar HTTP client for tests that talk to a whole Missive (or the in-process harness):
 * fetch with the Zaqar headers filled in, a per-request timeout (a hung request fails the test
 * instead of stalling it), and a few helpers the end-to-end and fault suites share.
 */
import { randomUUID } from 'node:crypto'
import net from 'node:net'

/** One HTTP answer, body read in full. */
export interface HttpResp {
  status: number
  headers: Headers
  text: string
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any
  /** How long the request took, in ms. */
  ms: number
}

export interface RequestOptions {
  /** Serialised as JSON, with `Content-Type: application/json`. */
  body?: unknown
  /** Sent as is (no Content-Type added). */
  raw?: string | Uint8Array
  /** Extra headers; `null` removes a default one (`Client-ID`, `X-Project-ID`). */
  headers?: Record<string, string | null>
  /** Abort after this long (default: the client's `timeoutMs`). */
  timeoutMs?: number
}

export interface ZaqarClient {
  readonly base: string
  readonly project: string
  readonly clientId: string
  req(method: string, path: string, opts?: RequestOptions): Promise<HttpResp>
}

/** A fresh random project name, safe in a header (prefix it to tell suites apart in logs). */
export function randomProject(prefix = 'p'): string {
  return `${prefix}-${randomUUID()}`
}

/**
 * A client for `base` acting as `project` (default: a fresh random one) with its own Client-ID.
 * Requests that take longer than `timeoutMs` (default 10 s) reject with a TimeoutError.
 */
export function zaqarClient(base: string, opts: { project?: string; clientId?: string; timeoutMs?: number } = {}): ZaqarClient {
  const project = opts.project ?? randomProject()
  const clientId = opts.clientId ?? randomUUID()
  const defaultTimeout = opts.timeoutMs ?? 10_000
  return {
    base,
    project,
    clientId,
    async req(method, path, ro = {}) {
      const headers: Record<string, string> = { 'Client-ID': clientId, 'X-Project-ID': project }
      for (const [k, v] of Object.entries(ro.headers ?? {})) {
        for (const h of Object.keys(headers)) if (h.toLowerCase() === k.toLowerCase()) delete headers[h]
        if (v !== null) headers[k] = v
      }
      let body: string | Uint8Array | undefined = ro.raw
      if (ro.body !== undefined) {
        body = JSON.stringify(ro.body)
        if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json'
      }
      const started = performance.now()
      const res = await fetch(base + path, {
        method,
        headers,
        body: body as BodyInit | undefined,
        signal: AbortSignal.timeout(ro.timeoutMs ?? defaultTimeout),
      })
      const text = await res.text()
      let json: unknown
      try {
        json = text === '' ? undefined : JSON.parse(text)
      } catch {
        json = undefined
      }
      return { status: res.status, headers: res.headers, text, json, ms: performance.now() - started }
    },
  }
}

/** The message id at the end of an href (`/v2/queues/q/messages/<id>[?...]`). */
export function idFromHref(href: string): string {
  const path = href.split('?')[0]
  return path.slice(path.lastIndexOf('/') + 1)
}

/** Splits `items` into arrays of at most `size`. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/** Runs `fn` over `items` with at most `limit` calls in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i], i)
    }
  })
  await Promise.all(lanes)
  return out
}

/**
 * Resolves with the error code of a fresh TCP connection to `port` on loopback: `null` if it
 * connected, else e.g. `ECONNREFUSED`.
 */
export function connectError(port: number, host = '127.0.0.1', timeoutMs = 2000): Promise<string | null> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host })
    const timer = setTimeout(() => {
      sock.destroy()
      resolve('ETIMEDOUT')
    }, timeoutMs)
    sock.once('connect', () => {
      clearTimeout(timer)
      sock.destroy()
      resolve(null)
    })
    sock.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      resolve(err.code ?? err.message)
    })
  })
}

/** Checks a 503 the way clients rely on it; returns what is wrong, or `null` if it is right. */
export function bad503(r: HttpResp): string | null {
  if (r.status !== 503) return `status ${r.status}, expected 503`
  const ra = r.headers.get('retry-after')
  if (ra === null || !/^\d+$/.test(ra) || Number(ra) < 1) return `503 without a valid Retry-After (got ${ra})`
  if (r.json === null || typeof r.json !== 'object' || typeof r.json.title !== 'string' || typeof r.json.description !== 'string') {
    return `503 body is not {title, description}: ${r.text.slice(0, 200)}`
  }
  return null
}

/** A response read off a raw connection. */
export interface RawResponse {
  status: number
  /** Header names lower-cased. */
  headers: Record<string, string>
  body: string
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any
}

/**
 * One HTTP/1.1 connection driven by hand: for requests that must be provably in flight (a head
 * sent, the body held back) or written at an exact moment. Reads one response per `response()`.
 */
export class RawConnection {
  readonly #sock: net.Socket
  #buf = Buffer.alloc(0)
  #closed = false
  #error: Error | null = null
  #wake: (() => void) | null = null

  private constructor(sock: net.Socket) {
    this.#sock = sock
    sock.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d])
      this.#wake?.()
    })
    sock.on('error', (err) => {
      this.#error = err
      this.#wake?.()
    })
    sock.on('close', () => {
      this.#closed = true
      this.#wake?.()
    })
  }

  /** Opens a connection to `base` (`http://host:port`). */
  static open(base: string): Promise<RawConnection> {
    const url = new URL(base)
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: url.hostname, port: Number(url.port) })
      sock.once('connect', () => {
        sock.off('error', reject)
        resolve(new RawConnection(sock))
      })
      sock.once('error', reject)
    })
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.#sock.write(data, (err) => (err ? reject(err) : resolve())))
  }

  /** The head of a request whose JSON body is `bodyBytes` long (the caller writes the body). */
  static head(method: string, path: string, headers: Record<string, string>, bodyBytes: number): string {
    const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)]
    if (bodyBytes > 0 || method === 'POST' || method === 'PUT' || method === 'PATCH') {
      lines.push('Content-Type: application/json', `Content-Length: ${bodyBytes}`)
    }
    return `${lines.join('\r\n')}\r\n\r\n`
  }

  /** The next response (Content-Length framing), or rejects if the connection ends first. */
  async response(timeoutMs = 10_000): Promise<RawResponse> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const split = this.#buf.indexOf('\r\n\r\n')
      if (split >= 0) {
        const head = this.#buf.subarray(0, split).toString('latin1')
        const [statusLine, ...lines] = head.split('\r\n')
        const headers: Record<string, string> = {}
        for (const l of lines) {
          const i = l.indexOf(':')
          if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim()
        }
        const len = Number(headers['content-length'] ?? 0)
        if (this.#buf.length >= split + 4 + len) {
          const body = this.#buf.subarray(split + 4, split + 4 + len).toString('utf8')
          this.#buf = this.#buf.subarray(split + 4 + len)
          let json: unknown
          try {
            json = body === '' ? undefined : JSON.parse(body)
          } catch {
            json = undefined
          }
          return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0), headers, body, json }
        }
      }
      if (this.#error) throw this.#error
      if (this.#closed) throw new Error(`connection closed before a full response (${this.#buf.length} bytes read)`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no response within ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      this.#wake = null
    }
  }

  /** True once the peer closed the connection. */
  get closed(): boolean {
    return this.#closed
  }

  close(): void {
    this.#sock.destroy()
  }
}
