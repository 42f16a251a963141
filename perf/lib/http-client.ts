/**
 * A minimal HTTP/1.1 keep-alive client for the load runner: one request in flight per
 * connection, no pipelining, responses framed by Content-Length (or chunked). It exists because
 * the consumer scenarios chain requests (claim, then delete the ids the claim returned), which
 * fixed-request tools such as autocannon cannot express, and node:http's client costs ~90 µs of
 * CPU per request on these machines — more than the service under test. Its own overhead is
 * measured in every bench run against a uWS hello-world (the "engine ceiling").
 */
import net from 'node:net'

export interface HttpResponse {
  status: number
  body: Buffer
}

const CRLFCRLF = Buffer.from('\r\n\r\n')
const ZERO_CHUNK = Buffer.from('0\r\n\r\n')

interface Pending {
  resolve: (r: HttpResponse) => void
  reject: (e: Error) => void
  timer: NodeJS.Timeout | undefined
}

export class HttpConnection {
  readonly host: string
  readonly port: number
  readonly timeoutMs: number
  #socket: net.Socket | null = null
  #connecting: Promise<net.Socket> | null = null
  #buf: Buffer | null = null
  #pending: Pending | null = null
  #closed = false
  /** Connections (re)opened, for diagnostics. */
  opened = 0

  constructor(host: string, port: number, timeoutMs = 30_000) {
    this.host = host
    this.port = port
    this.timeoutMs = timeoutMs
  }

  get busy(): boolean {
    return this.#pending !== null
  }

  #connect(): Promise<net.Socket> {
    if (this.#socket !== null) return Promise.resolve(this.#socket)
    this.#connecting ??= new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host: this.host, port: this.port, noDelay: true })
      let connected = false
      let failed = false
      s.once('connect', () => {
        connected = true
        this.#connecting = null
        this.#socket = s
        this.#buf = null
        this.opened++
        resolve(s)
      })
      s.on('data', (d: Buffer) => {
        if (this.#socket === s) this.#onData(d)
      })
      const fail = (err: Error): void => {
        if (failed) return
        failed = true
        if (!connected) {
          this.#connecting = null
          reject(err)
          return
        }
        // Only the socket currently in use may fail the request in flight.
        if (this.#socket !== s) return
        this.#socket = null
        this.#buf = null
        this.#failPending(err)
      }
      s.once('error', fail)
      s.once('close', () => fail(new Error('connection closed by peer')))
    })
    return this.#connecting
  }

  #failPending(err: Error): void {
    const p = this.#pending
    if (p === null) return
    this.#pending = null
    if (p.timer) clearTimeout(p.timer)
    p.reject(err)
  }

  /**
   * Sends one request. `head` is the request line and headers (without the blank line);
   * Content-Length is added for `body`.
   */
  async request(head: string, body?: Buffer): Promise<HttpResponse> {
    if (this.#closed) throw new Error('connection closed')
    if (this.#pending !== null) throw new Error('a request is already in flight on this connection')
    const s = await this.#connect()
    return new Promise<HttpResponse>((resolve, reject) => {
      const timer = this.timeoutMs > 0 ? setTimeout(() => this.#timeout(), this.timeoutMs) : undefined
      this.#pending = { resolve, reject, timer }
      this.#buf = null
      if (body !== undefined && body.length > 0) {
        s.cork()
        s.write(`${head}\r\nContent-Length: ${body.length}\r\n\r\n`)
        s.write(body)
        s.uncork()
      } else {
        s.write(`${head}\r\n\r\n`)
      }
    })
  }

  #timeout(): void {
    const s = this.#socket
    this.#socket = null
    this.#failPending(new Error(`request timed out after ${this.timeoutMs} ms`))
    s?.destroy()
  }

  #onData(chunk: Buffer): void {
    this.#buf = this.#buf === null ? chunk : Buffer.concat([this.#buf, chunk])
    const buf = this.#buf
    const headEnd = buf.indexOf(CRLFCRLF)
    if (headEnd < 0) return
    const status = Number(buf.toString('latin1', 9, 12))
    const head = buf.toString('latin1', 0, headEnd)
    const bodyStart = headEnd + 4
    let body: Buffer
    let consumed: number
    // 1xx, 204 and 304 never carry a body, whatever Content-Length says (uWS sends a bogus one on 204).
    if (status === 204 || status === 304 || (status >= 100 && status < 200)) {
      body = Buffer.alloc(0)
      consumed = bodyStart
    } else if (/\r\ntransfer-encoding:[ \t]*chunked/i.test(head)) {
      const end = buf.indexOf(ZERO_CHUNK, bodyStart)
      if (end < 0) return
      body = dechunk(buf.subarray(bodyStart, end + ZERO_CHUNK.length))
      consumed = end + ZERO_CHUNK.length
    } else {
      const m = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head)
      const len = m ? Number(m[1]) : 0
      if (buf.length < bodyStart + len) return
      body = buf.subarray(bodyStart, bodyStart + len)
      consumed = bodyStart + len
    }
    this.#buf = consumed < buf.length ? buf.subarray(consumed) : null
    const p = this.#pending
    this.#pending = null
    if (/\r\nconnection:[ \t]*close/i.test(head)) {
      const s = this.#socket
      this.#socket = null
      s?.destroy()
    }
    if (p === null) return
    if (p.timer) clearTimeout(p.timer)
    p.resolve({ status, body })
  }

  close(): void {
    this.#closed = true
    this.#failPending(new Error('connection closed'))
    this.#socket?.destroy()
    this.#socket = null
  }
}

function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = []
  let i = 0
  for (;;) {
    const eol = data.indexOf('\r\n', i)
    if (eol < 0) break
    const size = parseInt(data.toString('latin1', i, eol), 16)
    if (!(size > 0)) break
    parts.push(data.subarray(eol + 2, eol + 2 + size))
    i = eol + 2 + size + 2
  }
  return Buffer.concat(parts)
}
