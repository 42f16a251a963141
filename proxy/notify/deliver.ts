/**
 * One delivery attempt of one notification: an HTTP POST (Node's fetch) or a mail piped to a
 * sendmail-compatible command (Zaqar's `smtp_mode = third_part`, zaqar/notification/tasks/mailto.py).
 * Both are bounded in time; a webhook follows no redirect, reads nothing of a response but its
 * status, and reaches only addresses ssrf.ts allows. (node:http rather than fetch: fetch cannot be
 * told which address to connect to without adding undici as a dependency.)
 */
import { spawn } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { Agent as HttpAgent, request as httpRequest, type ClientRequest } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { ForbiddenAddress, guardedLookup, type AllowList } from './ssrf.js'

/** The header that carries a webhook body's signature: `sha256=<hex HMAC-SHA256 of the body>`. */
export const SIGNATURE_HEADER = 'X-Missive-Signature'

/** A subscription's signing secret: derived from the operator's key and the subscription id. */
export const subscriptionSecret = (key: string, id: string): string => createHmac('sha256', key).update(id, 'utf8').digest('hex')

/** The signature header value of `body` under `secret`. */
export const signBody = (secret: string, body: string): string => `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`

/** Headers a subscription's `post_headers` may not set: the transport's own. */
const RESERVED = new Set(['host', 'content-length', 'transfer-encoding', 'connection', SIGNATURE_HEADER.toLowerCase()])

/**
 * Connections to subscribers are kept open and reused: a connection per delivery leaves a socket
 * in TIME_WAIT per delivery on this side (it closes first), and past ~470 deliveries/s to one
 * address the ephemeral ports run out (docs/benchmarks.md, "Webhook delivery"). Safe with the address
 * guard: a pooled connection was made to an address `guardedLookup` checked, and the allow-list
 * does not change while the process runs. Idle connections close after `IDLE_MS`.
 */
const IDLE_MS = 10_000
const agents = {
  http: new HttpAgent({ keepAlive: true, timeout: IDLE_MS, scheduling: 'lifo' }),
  https: new HttpsAgent({ keepAlive: true, timeout: IDLE_MS, scheduling: 'lifo' }),
}
/** A response body at most this long is read (and dropped) so its connection can be reused; a longer one closes it. */
const DRAIN_MAX = 16 * 1024

/** An attempt's outcome: delivered, or why not (for the log and the dead letter); `permanent`: retrying cannot help. */
export type Attempt = { ok: true } | { ok: false; error: string; permanent?: boolean }

/**
 * POSTs `body` (node:http, so the connection goes to the address `lookup` checked: ssrf.ts).
 * Zaqar's rule: a status from 200 to 499 is delivered (a 4xx will not get better by retrying);
 * 5xx, a timeout or a connection error is a failure. Redirects are not followed, and the response
 * body is never kept (up to DRAIN_MAX bytes are read and dropped, so that the connection can be
 * reused): a receiver cannot make the notifier buffer anything.
 */
export function postWebhook(url: string, body: string, headers: Record<string, string>, timeoutMs: number, allow: AllowList): Promise<Attempt> {
  return settleOnce(timeoutMs, (finish) => {
    let req: ClientRequest
    try {
      const u = new URL(url)
      const payload = Buffer.from(body, 'utf8')
      const https = u.protocol === 'https:'
      const request = https ? httpsRequest : httpRequest
      const agent = https ? agents.https : agents.http
      req = request(u, { method: 'POST', headers: { ...headers, 'Content-Length': String(payload.length) }, lookup: guardedLookup(allow) as never, agent }, (res) => {
        const status = res.statusCode ?? 0
        // The body is never kept: up to DRAIN_MAX bytes are read and dropped so the connection
        // goes back to the pool; a longer body, or one still unfinished after `timeoutMs`, closes it.
        let seen = 0
        const drain = setTimeout(() => res.destroy(), timeoutMs)
        res.once('close', () => clearTimeout(drain))
        res.on('data', (chunk: Buffer) => {
          seen += chunk.length
          if (seen > DRAIN_MAX) res.destroy()
        })
        finish(status >= 200 && status < 500 ? { ok: true } : { ok: false, error: `HTTP ${status}` })
      })
      req.on('error', (err) => finish(err instanceof ForbiddenAddress ? { ok: false, error: err.message, permanent: true } : { ok: false, error: err.message }))
      req.end(payload)
    } catch (err) {
      finish({ ok: false, error: (err as Error).message, permanent: true })
      return undefined
    }
    return () => {
      req.destroy()
      return { ok: false, error: `timed out after ${timeoutMs} ms` }
    }
  })
}

/**
 * An attempt that settles once: with the first outcome `start` reports through `finish`, or,
 * after `timeoutMs`, with the outcome of the function `start` returned (which also aborts the
 * work; none when `start` finished before returning).
 */
function settleOnce(timeoutMs: number, start: (finish: (a: Attempt) => void) => (() => Attempt) | undefined): Promise<Attempt> {
  return new Promise((resolve) => {
    let done = false
    let timer: NodeJS.Timeout | undefined
    const finish = (a: Attempt): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      resolve(a)
    }
    const onTimeout = start(finish)
    if (!done && onTimeout !== undefined) timer = setTimeout(() => finish(onTimeout()), timeoutMs)
  })
}

/** Extra headers from the subscription's `post_headers` (strings only, transport headers excluded). */
export function extraHeaders(options: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {}
  const h = options.post_headers
  if (h === null || typeof h !== 'object' || Array.isArray(h)) return out
  for (const [k, v] of Object.entries(h)) {
    if (typeof v === 'string' && /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k) && !RESERVED.has(k.toLowerCase()) && !/[\r\n]/.test(v)) out[k] = v
  }
  return out
}

/** Header-safe text: no line breaks (a subject or address cannot add headers). */
const oneLine = (s: string): string => s.replace(/[\r\n]+/g, ' ')

/**
 * Pipes a mail to `command` (split on spaces, run without a shell): `To` is the subscriber's
 * address, `From` and `Subject` the subscription's options (`from`, `subject`, or `?subject=` in
 * the URI), the body the notification's JSON — as Zaqar's mailto task builds it.
 */
export function sendMail(command: string, subscriber: string, options: Record<string, unknown>, body: string, timeoutMs: number): Promise<Attempt> {
  const uri = subscriber.slice('mailto:'.length)
  const q = uri.indexOf('?')
  const to = q < 0 ? uri : uri.slice(0, q)
  const params = new URLSearchParams(q < 0 ? '' : uri.slice(q + 1))
  let subject = typeof options.subject === 'string' ? options.subject : ''
  for (const [k, v] of params) if (k.toLowerCase() === 'subject') subject = v
  const from = typeof options.from === 'string' ? options.from : ''
  const mail = `To: ${oneLine(decodeURIComponent(to))}\r\nFrom: ${oneLine(from)}\r\nSubject: ${oneLine(subject)}\r\nContent-Type: text/plain; charset="utf-8"\r\nMIME-Version: 1.0\r\n\r\n${body}\r\n`
  const [cmd, ...args] = command.split(' ').filter((s) => s !== '')
  return settleOnce(timeoutMs, (finish) => {
    const child = spawn(cmd!, args, { stdio: ['pipe', 'ignore', 'ignore'] })
    child.on('error', (err) => finish({ ok: false, error: `mail command: ${err.message}` }))
    child.on('exit', (code, signal) => finish(code === 0 ? { ok: true } : { ok: false, error: `mail command exited ${code ?? signal}` }))
    child.stdin.on('error', () => undefined)
    child.stdin.end(mail)
    return () => {
      child.kill('SIGKILL')
      return { ok: false, error: `mail command timed out after ${timeoutMs} ms` }
    }
  })
}
