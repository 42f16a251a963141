/**
 * Raw HTTP/1.1 over a TCP socket, for requests fetch will not send (duplicate or conflicting
 * framing headers, bytes that are not UTF-8, HEAD on a kept-alive connection) and for reading
 * exactly the bytes the server wrote.
 */
import net from 'node:net'

/** One response parsed off the wire. Header names lower-cased; repeated headers joined by `, `. */
export interface WireResponse {
  status: number
  headers: Record<string, string>
  /** Every header line as sent (`Name: value`). */
  lines: string[]
  body: Buffer
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any
}

export class RawSocket {
  readonly #sock: net.Socket
  buf = Buffer.alloc(0)
  closed = false
  #wake: (() => void) | null = null

  private constructor(sock: net.Socket) {
    this.#sock = sock
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d])
      this.#wake?.()
    })
    // A reset is a close too: the tests look at what was written before it.
    sock.on('error', () => undefined)
    sock.on('close', () => {
      this.closed = true
      this.#wake?.()
    })
  }

  static open(port: number): Promise<RawSocket> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: '127.0.0.1', port })
      sock.once('connect', () => {
        sock.off('error', reject)
        resolve(new RawSocket(sock))
      })
      sock.once('error', reject)
    })
  }

  write(data: string | Buffer): Promise<void> {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data
    return new Promise((resolve) => this.#sock.write(bytes, () => resolve()))
  }

  /** Resolves once `ready(buf)` holds or the peer closed; rejects after `timeoutMs`. */
  async until(ready: (buf: Buffer) => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!ready(this.buf) && !this.closed) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no complete answer within ${timeoutMs} ms (read ${JSON.stringify(this.buf.toString('latin1').slice(0, 300))})`)
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

  /** Waits for the peer to close (rejects after `timeoutMs`). */
  async closedWithin(timeoutMs = 10_000): Promise<void> {
    await this.until(() => false, timeoutMs).catch((err: unknown) => {
      if (!this.closed) throw err
    })
  }

  destroy(): void {
    this.#sock.destroy()
  }
}

/**
 * Parses one response at the start of `buf`; `head: true` for the answer to a HEAD (no body,
 * whatever Content-Length says). Returns the response and the bytes after it, or null when
 * `buf` does not hold a whole response yet.
 */
export function parseResponse(buf: Buffer, head = false): { res: WireResponse; rest: Buffer } | null {
  const split = buf.indexOf('\r\n\r\n')
  if (split < 0) return null
  const [statusLine = '', ...lines] = buf.subarray(0, split).toString('latin1').split('\r\n')
  const headers: Record<string, string> = {}
  for (const l of lines) {
    const i = l.indexOf(':')
    const k = l.slice(0, i).trim().toLowerCase()
    const v = l.slice(i + 1).trim()
    headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`
  }
  const len = head ? 0 : Number(headers['content-length'] ?? 0)
  if (buf.length < split + 4 + len) return null
  const body = buf.subarray(split + 4, split + 4 + len)
  let json: unknown
  try {
    json = body.length === 0 ? undefined : JSON.parse(body.toString('utf8'))
  } catch {
    json = undefined
  }
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0)
  return { res: { status, headers, lines, body, json }, rest: buf.subarray(split + 4 + len) }
}

/** True once `buf` holds a whole response (a HEAD answer when `head`). */
export const hasResponse = (head = false) => (buf: Buffer): boolean => parseResponse(buf, head) !== null

/**
 * Sends `request` on a fresh connection and reads one response; `null` when the server closed
 * the connection without answering.
 */
export async function rawExchange(port: number, request: string | Buffer, opts: { head?: boolean; timeoutMs?: number } = {}): Promise<WireResponse | null> {
  const s = await RawSocket.open(port)
  try {
    await s.write(request)
    await s.until(hasResponse(opts.head), opts.timeoutMs)
    return parseResponse(s.buf, opts.head)?.res ?? null
  } finally {
    s.destroy()
  }
}

/** `{title, description}` with both strings: the error body every 4xx must have. */
export function isErrorBody(json: unknown): boolean {
  if (json === null || typeof json !== 'object') return false
  const o = json as Record<string, unknown>
  return typeof o.title === 'string' && typeof o.description === 'string'
}
