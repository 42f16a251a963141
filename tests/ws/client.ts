/**
 * A small client of Missive's WebSocket API for tests, on the `ws` library: sends Zaqar frames
 * (JSON text or MessagePack binary) and hands back answers and pushes separately, in order.
 */
import { randomUUID } from 'node:crypto'
import { decode, encode } from '@msgpack/msgpack'
import WebSocket from 'ws'

export interface Frame {
  request?: { action: string | null; body: unknown; headers: unknown; api: string }
  body: any // eslint-disable-line @typescript-eslint/no-explicit-any
  headers: { status: number }
  /** Arrived in a binary (MessagePack) frame. */
  binary: boolean
}

export interface Push {
  body: unknown
  ttl?: number
  queue_name: string
  Message_Type: string
  id: string
  binary: boolean
}

export class WsClient {
  readonly ws: WebSocket
  readonly project: string
  readonly clientId = randomUUID()
  readonly answers: Frame[] = []
  readonly pushes: Push[] = []
  /** Every text frame as received (for exact numbers, which JSON.parse rounds). */
  readonly texts: string[] = []
  #wake: (() => void) | undefined
  closed: { code: number; reason: string } | undefined

  private constructor(ws: WebSocket, project: string) {
    this.ws = ws
    this.project = project
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) this.texts.push(data.toString('utf8'))
      const v = (isBinary ? decode(data, { useBigInt64: true }) : JSON.parse(data.toString('utf8'))) as Record<string, unknown>
      if (v.Message_Type !== undefined) this.pushes.push({ ...(v as unknown as Push), binary: isBinary })
      else this.answers.push({ ...(v as unknown as Frame), binary: isBinary })
      this.#wake?.()
    })
    ws.on('close', (code: number, reason: Buffer) => {
      this.closed = { code, reason: reason.toString() }
      this.#wake?.()
    })
  }

  static open(url: string, project = `p-${randomUUID()}`): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url)
      const c = new WsClient(ws, project)
      ws.once('open', () => resolve(c))
      ws.once('error', reject)
    })
  }

  /** Sends raw bytes or text. */
  raw(data: string | Uint8Array, binary = typeof data !== 'string'): void {
    this.ws.send(data, { binary })
  }

  /** Sends `{action, headers, body}` (Zaqar's headers filled in unless given) without waiting. */
  post(action: string, body?: unknown, opts: { binary?: boolean; headers?: Record<string, unknown> } = {}): void {
    const frame = { action, headers: opts.headers ?? { 'Client-ID': this.clientId, 'X-Project-ID': this.project }, ...(body !== undefined && { body }) }
    if (opts.binary) this.ws.send(encode(frame, { useBigInt64: true }), { binary: true })
    else this.ws.send(JSON.stringify(frame))
  }

  /** Sends a frame and resolves with the next answer. */
  async send(action: string, body?: unknown, opts: { binary?: boolean; headers?: Record<string, unknown> } = {}): Promise<Frame> {
    const before = this.answers.length
    this.post(action, body, opts)
    await this.until(() => this.answers.length > before, `an answer to ${action}`)
    return this.answers[before]!
  }

  /** Resolves when `cond` holds (checked on every frame and on close); rejects after 10 s. */
  async until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const deadline = setTimeout(() => this.#wake?.(), timeoutMs)
    const started = performance.now()
    try {
      while (!cond()) {
        if (performance.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
        if (this.closed !== undefined && !cond()) throw new Error(`socket closed (${this.closed.code} ${this.closed.reason}) waiting for ${what}`)
        await new Promise<void>((r) => (this.#wake = r))
      }
    } finally {
      clearTimeout(deadline)
    }
  }

  close(): void {
    this.ws.close()
  }
}
