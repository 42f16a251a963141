/**
 * Zaqar's WebSocket API on the HTTP port (docs/websocket.md), served by uWS at `wsPath`.
 *
 * A frame is `{"action", "headers", "body"}`: JSON in text frames, MessagePack in binary frames
 * (zaqar/transport/websocket/protocol.py). Each answer is Zaqar's response frame
 * `{"request": {action, body, headers, api}, "body", "headers": {"status"}}` in the encoding of
 * the request. The queue, message and claim actions run the HTTP handler of their route through
 * `HttpServer.call` (proxy/websocket-actions.ts maps the shapes), so the API has one
 * implementation. Subscriptions are the socket's own (push, proxy/websocket-push.ts).
 *
 * Bounds: frames larger than `wsMaxFrameBytes` close the socket (uWS, code 1009); at most
 * `wsMaxInflight` requests of one socket run at once (429 frames beyond); a socket serves one
 * project (its first frame's) and a project has at most `wsMaxSocketsPerProject` sockets (429,
 * then close 1008); at most `wsMaxSockets` sockets in all (503 to the upgrade); a socket whose
 * unsent data exceeds `wsMaxBackpressure` is closed (1008): a slow reader never grows memory.
 */
import { randomUUID } from 'node:crypto'
import type { WebSocket } from 'uWebSockets.js'
import type { Config } from '../shared/config.js'
import { MissiveError } from '../shared/errors.js'
import type { Logger } from '../shared/log.js'
import type { Authenticator } from './auth/index.js'
import type { DataDriver } from '../shared/storage/contract.js'
import { parseJson } from './json.js'
import type { AbortHook } from './long-poll.js'
import { jsonToMsgpack, parseMsgpack } from './msgpack.js'
import { checkProject, checkQueueIdentity, errorReply, type Reply } from './transport.js'
import type { uWS } from './uws.js'
import { ACTIONS, frameJson, parseReply, STORED_SUBSCRIPTION_ACTIONS, type FrameBody } from './websocket-actions.js'
import { pyList } from './api/context.js'
import { SocketSubscriptions, type PushSocket } from './websocket-push.js'

/** One API call of a frame, run by the HTTP server's own pipeline (`HttpServer.call`). */
export interface ApiCall {
  method: string
  /** Full path, `/v2/…`. */
  path: string
  query: string
  clientId: string | undefined
  project: string | undefined
  requestId: string
  authToken: string
  body: Uint8Array | null
}

export type RunCall = (call: ApiCall, abort: AbortHook) => Promise<Reply>

/** Per-socket state (uWS user data: its fields live on the socket object, so none may be named like a socket method). */
interface SocketData extends PushSocket {
  /** The project of the socket's first valid frame; undefined until then. */
  project: string | undefined
  inflight: number
  /** Requests still running when the socket closed learn it here (long polls stop waiting). */
  aborts: Set<AbortHook>
  /** The credential `authenticate` accepted: used by frames that carry none (docs/websocket.md). */
  token: string | undefined
  /** The project that credential is bound to, when it is: frames without X-Project-ID use it. */
  tokenProject: string | undefined
}

const STATUS_OK = new Set([200, 201, 204])

export class WebSocketApi {
  readonly #config: Config
  readonly #run: RunCall
  readonly #log: Logger
  readonly #auth: Authenticator
  readonly subscriptions: SocketSubscriptions
  readonly #perProject = new Map<string, number>()
  readonly #sockets = new Set<WebSocket<SocketData>>()

  constructor(app: uWS.TemplatedApp, config: Config, run: RunCall, log: Logger, auth: Authenticator, storage?: Pick<DataDriver, 'getMessages' | 'listen'>) {
    this.#config = config
    this.#run = run
    this.#log = log
    this.#auth = auth
    this.subscriptions = new SocketSubscriptions(config.wsMaxBackpressure)
    this.subscriptions.storage = storage
    app.ws<SocketData>(config.wsPath, {
      maxPayloadLength: config.wsMaxFrameBytes,
      maxBackpressure: config.wsMaxBackpressure,
      idleTimeout: config.wsIdleTimeout,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => this.#upgrade(res, req, context),
      open: (ws) => {
        this.#sockets.add(ws)
        const data = ws.getUserData()
        data.push = (frame, binary) => sendFrame(ws, data, frame, binary, config.wsMaxBackpressure)
      },
      message: (ws, message, isBinary) => {
        const bytes = Buffer.from(message.slice(0))
        try {
          this.#onFrame(ws, bytes, isBinary)
        } catch (err) {
          // A frame must never take the proxy down: a 500 frame, logged with the error.
          log.error({ err }, 'websocket frame failed')
          this.#send(ws, { request: null, body: { error: 'Unexpected error.' }, headers: { status: 500 } }, isBinary)
        }
      },
      close: (ws) => this.#onClose(ws),
    })
  }

  /** Sockets open now. */
  get size(): number {
    return this.#sockets.size
  }

  /** Closes every socket (the proxy drains). */
  closeAll(): void {
    for (const ws of [...this.#sockets]) ws.end(1001, 'Server shutting down.')
  }

  #upgrade(res: uWS.HttpResponse, req: uWS.HttpRequest, context: unknown): void {
    if (this.#sockets.size >= this.#config.wsMaxSockets) {
      res.cork(() => {
        res.writeStatus('503 Service Unavailable').writeHeader('retry-after', '1').writeHeader('content-type', 'application/json')
        res.end(JSON.stringify({ title: 'Service temporarily unavailable', description: 'Too many WebSocket connections on this server.' }), true)
      })
      return
    }
    const data: SocketData = { id: randomUUID(), closed: false, binary: false, project: undefined, inflight: 0, aborts: new Set(), push: () => false, token: undefined, tokenProject: undefined }
    res.upgrade(
      data,
      req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'),
      req.getHeader('sec-websocket-extensions'),
      context as Parameters<uWS.HttpResponse['upgrade']>[4],
    )
  }

  #onClose(ws: WebSocket<SocketData>): void {
    const data = ws.getUserData()
    data.closed = true
    this.#sockets.delete(ws)
    this.subscriptions.dropSocket(data)
    for (const hook of data.aborts) {
      hook.aborted = true
      hook.onAbort?.()
    }
    if (data.project !== undefined) {
      const n = this.#perProject.get(data.project)! - 1
      if (n === 0) this.#perProject.delete(data.project)
      else this.#perProject.set(data.project, n)
    }
  }

  /** Sends one frame unless the socket is gone; closes a socket whose reader is too slow. */
  #send(ws: WebSocket<SocketData>, frame: unknown, binary: boolean): void {
    const data = ws.getUserData()
    if (data.closed) return
    const text = frameJson(frame)
    sendFrame(ws, data, binary ? jsonToMsgpack(text) : text, binary, this.#config.wsMaxBackpressure)
  }

  #onFrame(ws: WebSocket<SocketData>, bytes: Buffer, binary: boolean): void {
    const data = ws.getUserData()
    // Zaqar's answers to frames it cannot read: request `{action: null, …}`.
    const blank = { action: null, body: {}, headers: null, api: 'v2' }
    let payload: unknown
    try {
      payload = binary ? parseMsgpack(bytes) : parseJson(bytes)
    } catch (err) {
      const what = binary ? 'binary (MessagePack)' : 'text (JSON)'
      const why = err instanceof MissiveError ? (err.description ?? err.title) : String(err)
      return this.#send(ws, { request: blank, body: { error: `Can't decode ${what} request. ${why}` }, headers: { status: 400 } }, binary)
    }
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
      return this.#send(ws, { request: blank, body: { error: 'Unexpected body type. Expected dict or dict like.' }, headers: { status: 400 } }, binary)
    }
    const frame = payload as { action?: unknown; headers?: unknown; body?: unknown }
    const action = typeof frame.action === 'string' ? frame.action : null
    const headers = isPlain(frame.headers) ? (frame.headers as Record<string, unknown>) : {}
    const body = frame.body === undefined ? {} : frame.body
    const request = { action, body, headers: frame.headers ?? null, api: 'v2' }
    const answer = (status: number, out: unknown): void => this.#send(ws, { request, body: out, headers: { status } }, binary)
    const fail = (err: MissiveError): void => answer(err.status, { error: err.description ?? err.title, exception: err.title })

    // Own keys only: `toString` or `__proto__` are not actions.
    if (action === null || (!Object.hasOwn(ACTIONS, action) && !LOCAL_ACTIONS.has(action))) {
      return answer(400, { error: `${String(frame.action)} is not a valid action` })
    }
    if (!isPlain(body) || (frame.headers !== undefined && !isPlain(frame.headers))) return answer(400, { error: 'Schema validation failed.' })
    if (action === 'authenticate') return this.#authenticate(data, headerText(headers, 'X-Auth-Token') ?? '', answer)
    // With authentication on, a frame carries its own X-Auth-Token or the socket authenticated
    // first (python-zaqarclient sends the token with `authenticate` only), as in Zaqar.
    const token = headerText(headers, 'X-Auth-Token') ?? data.token
    if (this.#auth.strategy !== 'none' && token === undefined) return answer(403, { error: 'Not authentified.' })
    const b = body as FrameBody
    let spec = Object.hasOwn(ACTIONS, action) ? ACTIONS[action] : undefined
    const strings = spec?.strings ?? ['queue_name']
    if (strings.some((k) => typeof b[k] !== 'string')) return answer(400, { error: 'Schema validation failed.' })
    // The socket's project: fixed by its first frame, bounded per project.
    const project = headerText(headers, 'X-Project-ID') ?? data.tokenProject
    try {
      const p = checkProject(project)
      if (data.project === undefined) {
        const n = this.#perProject.get(p) ?? 0
        if (n >= this.#config.wsMaxSocketsPerProject) {
          fail(new MissiveError('too_many_requests', `No more than ${this.#config.wsMaxSocketsPerProject} WebSocket connections per project.`))
          if (!data.closed) ws.end(1008, 'Too many connections for this project.')
          return
        }
        this.#perProject.set(p, n + 1)
        data.project = p
      } else if (p !== data.project) {
        throw new MissiveError('bad_request', 'A WebSocket connection serves the project of its first request only; open another connection for another project.')
      }
      if (data.inflight >= this.#config.wsMaxInflight) {
        throw new MissiveError('too_many_requests', `No more than ${this.#config.wsMaxInflight} requests may run at once on one WebSocket connection.`)
      }
    } catch (err) {
      return fail(err as MissiveError)
    }
    // A stored (webhook, mail) subscription: the HTTP route's (docs/notifications.md).
    if (spec === undefined) spec = this.#storedSubscription(action, data, b)
    if (spec === undefined) {
      // subscription_*: the socket's own subscriptions (push).
      try {
        checkQueueIdentity(b.queue_name as string, data.project)
        const [status, out] = this.#subscription(action, data, b, binary)
        // A new push subscription is answered once other proxies' posts reach it (its mark).
        if (status === 201) {
          void this.subscriptions.listening({ project: data.project!, queue: b.queue_name as string }).then(() => answer(status, out))
          return
        }
        return answer(status, out)
      } catch (err) {
        return fail(err as MissiveError)
      }
    }
    const http = spec.toHttp(b)
    const call: ApiCall = {
      method: http.method,
      path: `/v2/${http.path}`,
      query: http.query,
      clientId: headerText(headers, 'Client-ID'),
      project: data.project,
      requestId: headerText(headers, 'X-Openstack-Request-Id') ?? '',
      authToken: token ?? '',
      body: http.body === undefined ? null : Buffer.from(frameJson(http.body)),
    }
    const hook: AbortHook = { aborted: false, onAbort: undefined }
    data.inflight++
    data.aborts.add(hook)
    // `run` answers errors as replies; anything thrown while shaping the answer is a 500 frame,
    // never an unhandled rejection.
    const reply = (r: Reply): void => {
      if (!STATUS_OK.has(r.status)) {
        const e = r.body === undefined ? {} : (JSON.parse(r.body) as { title?: string; description?: string })
        return answer(r.status, { error: e.description ?? e.title ?? null, exception: e.title ?? null })
      }
      answer(r.status, spec.shape(r.body === undefined ? undefined : parseReply(r.body), b))
    }
    this.#run(call, hook)
      .then(reply)
      .catch((err: unknown) => reply(errorReply(err, this.#log, call.requestId)))
      .catch((err: unknown) => this.#log.error({ err, action }, 'websocket answer failed'))
      .finally(() => {
        data.inflight--
        data.aborts.delete(hook)
      })
  }

  /**
   * `authenticate`: checks the token as every HTTP request's is checked, and keeps it for the
   * socket's later frames. Strategy `none`: always 200. A failure is 401 and the socket stays
   * open for another try (zaqar/transport/websocket/protocol.py).
   */
  #authenticate(data: SocketData, token: string, answer: (status: number, body: unknown) => void): void {
    if (this.#auth.strategy === 'none') return answer(200, { message: 'Authentified.' })
    Promise.resolve(token === '' ? null : this.#auth.authenticate(token))
      .then(
        (identity) => {
          if (identity === null) return answer(401, { error: 'Authentication failed.' })
          data.token = token
          data.tokenProject = identity.project
          answer(200, { message: 'Authentified.' })
        },
        (err: unknown) => {
          const r = errorReply(err, this.#log, '')
          answer(r.status, { error: 'Authentication failed.' })
        },
      )
      .catch((err: unknown) => this.#log.error({ err }, 'websocket authenticate failed'))
  }

  /** The HTTP action for a stored subscription, or undefined when the frame is about the socket's own. */
  #storedSubscription(action: string, data: SocketData, b: FrameBody): (typeof STORED_SUBSCRIPTION_ACTIONS)['subscription_get'] | undefined {
    if (action === 'subscription_create') {
      return typeof b.subscriber === 'string' && b.subscriber !== '' ? STORED_SUBSCRIPTION_ACTIONS.subscription_create : undefined
    }
    if ((action !== 'subscription_get' && action !== 'subscription_delete') || typeof b.subscription_id !== 'string' || typeof b.queue_name !== 'string') return undefined
    const ref = { project: data.project!, queue: b.queue_name }
    return this.subscriptions.get(ref, data, b.subscription_id, this.#config.wsPath) === undefined ? STORED_SUBSCRIPTION_ACTIONS[action] : undefined
  }

  #subscription(action: string, data: SocketData, b: FrameBody, binary: boolean): [number, unknown] {
    const queue = b.queue_name as string
    const ref = { project: data.project!, queue }
    const subs = this.subscriptions
    switch (action) {
      case 'subscription_create': {
        if (b.subscriber !== undefined && b.subscriber !== null && b.subscriber !== '') {
          // A non-string subscriber (a string one went to the HTTP route above).
          throw new MissiveError('bad_request', `The subscriber type of subscription must be supported in the list ${pyList(this.#config.limits.subscriber_types)}.`)
        }
        if (b.ttl !== undefined && (typeof b.ttl !== 'number' || !Number.isInteger(b.ttl))) return [400, { error: 'Schema validation failed.' }]
        if (b.options !== undefined && !isPlain(b.options)) return [400, { error: 'Schema validation failed.' }]
        const id = subs.subscribe(ref, data, { ttl: (b.ttl as number | undefined) ?? 3600, options: (b.options as Record<string, unknown>) ?? {} }, this.#config.wsMaxSubscriptionsPerSocket, binary)
        if (id === null) return [409, `Subscription ${queue} not created.`]
        // Pushes use the encoding of the last subscription made (zaqar/transport/websocket/protocol.py).
        return [201, { subscription_id: id, message: `Subscription ${queue} created.` }]
      }
      case 'subscription_list':
        return [200, { subscriptions: subs.list(ref, data, this.#config.wsPath) }]
      case 'subscription_get': {
        if (typeof b.subscription_id !== 'string') return [400, { error: 'Schema validation failed.' }]
        const s = subs.get(ref, data, b.subscription_id, this.#config.wsPath)
        if (s === undefined) throw new MissiveError('not_found', `Subscription ${b.subscription_id} for queue ${queue} does not exist.`)
        return [200, s]
      }
      default: {
        if (typeof b.subscription_id !== 'string') return [400, { error: 'Schema validation failed.' }]
        subs.unsubscribe(ref, data, b.subscription_id)
        return [204, `Subscription ${b.subscription_id} removed.`]
      }
    }
  }
}

const LOCAL_ACTIONS = new Set(['authenticate', 'subscription_create', 'subscription_list', 'subscription_get', 'subscription_delete'])

const isPlain = (v: unknown): boolean => v !== null && typeof v === 'object' && !Array.isArray(v)

/** A header of the frame as text; header names are matched case-insensitively. */
function headerText(headers: Record<string, unknown>, name: string): string | undefined {
  const lower = name.toLowerCase()
  for (const k in headers) {
    if (k.toLowerCase() !== lower) continue
    const v = headers[k]
    return typeof v === 'string' ? v : v === undefined || v === null ? undefined : String(v)
  }
  return undefined
}

/**
 * Sends a frame, or closes the socket (1008) when its unsent data would pass `maxBackpressure`:
 * a reader that does not keep up is dropped rather than buffered for without bound. Returns
 * false when the frame was not sent.
 */
function sendFrame(ws: WebSocket<SocketData>, data: SocketData, frame: string | Uint8Array, binary: boolean, maxBackpressure: number): boolean {
  if (data.closed) return false
  if (ws.getBufferedAmount() > maxBackpressure) {
    data.closed = true
    ws.end(1008, 'Too slow: back-pressure limit reached.')
    return false
  }
  // 2: dropped by uWS (its own maxBackpressure): the same verdict.
  if (ws.send(frame, binary) === 2) {
    data.closed = true
    ws.end(1008, 'Too slow: back-pressure limit reached.')
    return false
  }
  return true
}
