/**
 * The HTTP front end on uWebSockets.js. uWS rules kept here and only here: request data is
 * copied synchronously, `onAborted` is registered before any await, bodies are capped while
 * read, and replies are written inside `res.cork`.
 */
import { uWS } from './uws.js'
import type { Config } from '../shared/config.js'
import { MissiveError } from '../shared/errors.js'
import type { Logger } from '../shared/log.js'
import { NO_AUTH, type Authenticator, type Identity } from './auth/index.js'
import { verifySignedRequest, type SignedHeaders } from './auth/signed-url.js'
import type { Notifier } from './notify/notifier.js'
import type { RateLimiter } from './limits/index.js'
import { Cors } from './cors.js'
import type { ApiRequest } from './api/context.js'
import { openApiJson } from './api/openapi.js'
import { RouteTable } from './api/routes.js'
import { versions } from './api/system.js'
import { LongPoll } from './long-poll.js'
import { msgpackReply } from './msgpack.js'
import { WebSocketApi, type ApiCall } from './websocket.js'
import type { AbortHook } from './long-poll.js'
import type { ProxyMetrics } from './metrics.js'
import { Query } from './params.js'
import { CONTENT_TYPE as METRICS_TYPE } from '../shared/metrics.js'
import type { ControlPlane } from './pool-set.js'
import type { PooledStorage } from './pooled-driver.js'
import {
  checkAccept,
  checkClientId,
  checkContentType,
  checkProject,
  checkQueueIdentity,
  checkTopicIdentity,
  errorReply,
  requestIdFrom,
  STATUS_TEXT,
  type Reply,
} from './transport.js'

export interface AppDeps {
  config: Config
  /** Every pool behind one driver: what queue, message and claim handlers use. */
  storage: PooledStorage
  /** The catalog and the pools' workers: what the admin API uses. */
  control: ControlPlane
  log: Logger
  /** Absent: no request metrics and no /metrics page. */
  metrics?: ProxyMetrics
  /** Parked long-polling requests; absent: the server makes its own (proxy/long-poll.ts). */
  longPoll?: LongPoll
  /** Who requests are (proxy/auth/). Absent: strategy `none`. */
  auth?: Authenticator
  /** Delivers posted messages to subscriptions (proxy/notify/notifier.ts); absent: none delivered here. */
  notifier?: Notifier
  /** Per-project rate limits (proxy/limits/). Absent: none. */
  limiter?: RateLimiter | undefined
}

/** Per-request bookkeeping the reply writer needs. */
interface RequestState {
  aborted: boolean
  /** The request reached `#handle`: its promise will end it, aborted or not. */
  handling: boolean
  /** Its in-flight slot was given back (`#release`). */
  released: boolean
  /** Arrived on the admin listener (`adminPort`), not the API port. */
  admin: boolean
  started: number
  /** Route template for metrics and logs (`/v2/queues/{queue}/messages`), never the path. */
  route: string
  /** Set while the request is parked (long polling): wakes it when the client goes away. */
  onAbort: (() => void) | undefined
}

/** Headers a request may carry that we read, copied out of uWS before anything async. */
interface Head {
  method: string
  path: string
  query: string
  clientId: string | undefined
  project: string | undefined
  contentType: string
  contentLength: string | undefined
  chunked: boolean
  accept: string
  requestId: string
  authToken: string
  /** `Idempotency-Key` (docs/api.md, "Safe retries"). */
  idempotencyKey: string | undefined
  /** `URL-Signature` and its companions (proxy/auth/signed-url.ts); undefined when not sent. */
  signed: SignedHeaders | undefined
  /** CORS (proxy/cors.ts): `Origin` and a preflight's requested method and headers. */
  origin: string | undefined
  corsMethod: string | undefined
  corsHeaders: string | undefined
  /** Total bytes of header names and values. */
  headerBytes: number
  /**
   * Why the head cannot be served, found while copying it (duplicate or conflicting framing or
   * identity headers, header bytes that are not UTF-8); undefined when it is fine.
   */
  problem: string | undefined
}

// uWS writes a `uWebSockets: 20` header on every response unless its loop is told to be silent
// (the binding's undocumented `_cfg('silent')`, which sets uWS::Loop's noMark flag): it names
// the server and its version to every client for no benefit. Process-wide, set once. Both builds
// (20.30 and upstream 20.57, shared/uws.ts) export it; the check keeps a future build without it
// serving (with the mark) rather than crashing at start.
if (typeof uWS._cfg === 'function') uWS._cfg('silent')

/** What uWS's lossy UTF-8 decoding leaves for any byte sequence that is not UTF-8. */
const REPLACEMENT = '\uFFFD'

/** A header we read that came twice: the request is ambiguous (RFC 9112 §6.3, and a project). */
const duplicate = (name: string): string => `Duplicate ${name} header.`

/**
 * A header value uWS decoded lossily (invalid UTF-8 becomes U+FFFD), or that holds U+FFFD
 * itself: `a\xe9b`, `a\xffb` and `a\uFFFDb` must never read as the same project or client.
 */
const notUtf8 = (name: string): string => `The ${name} header is not valid UTF-8.`

function readHead(req: uWS.HttpRequest): Head {
  const head: Head = {
    method: req.getCaseSensitiveMethod().toUpperCase(),
    path: req.getUrl(),
    query: req.getQuery() ?? '',
    clientId: undefined,
    project: undefined,
    contentType: '',
    contentLength: undefined,
    chunked: false,
    accept: '',
    requestId: '',
    authToken: '',
    idempotencyKey: undefined,
    signed: undefined,
    origin: undefined,
    corsMethod: undefined,
    corsHeaders: undefined,
    headerBytes: 0,
    problem: undefined,
  }
  let tokenSeen = false
  // forEach, not getHeader: a missing header and an empty one are different errors (zaqar/common/transport/wsgi/helpers.py),
  // and getHeader shows only the first of duplicates while uWS may frame the body by another.
  req.forEach((k, v) => {
    head.headerBytes += k.length + v.length + 4
    switch (k) {
      case 'client-id':
        if (head.clientId !== undefined) head.problem ??= duplicate('Client-ID')
        else if (v.includes(REPLACEMENT)) head.problem ??= notUtf8('Client-ID')
        head.clientId = v
        break
      case 'x-project-id':
        if (head.project !== undefined) head.problem ??= duplicate('X-Project-ID')
        else if (v.includes(REPLACEMENT)) head.problem ??= notUtf8('X-Project-ID')
        head.project = v
        break
      case 'content-type':
        head.contentType = v
        break
      case 'content-length':
        // uWS frames the body by the first Content-Length; the limits would read the last.
        if (head.contentLength !== undefined) head.problem ??= duplicate('Content-Length')
        head.contentLength = v
        break
      case 'transfer-encoding':
        if (head.chunked) head.problem ??= duplicate('Transfer-Encoding')
        // uWS only de-chunks; any other coding would hand us bytes we cannot read.
        else if (v.trim().toLowerCase() !== 'chunked') head.problem ??= 'Unsupported Transfer-Encoding.'
        head.chunked = true
        break
      case 'accept':
        head.accept = v
        break
      case 'x-openstack-request-id':
        head.requestId = v
        break
      case 'x-auth-token':
        if (tokenSeen) head.problem ??= duplicate('X-Auth-Token')
        else if (v.includes(REPLACEMENT)) head.problem ??= notUtf8('X-Auth-Token')
        tokenSeen = true
        head.authToken = v
        break
      case 'idempotency-key':
        head.idempotencyKey = v
        break
      case 'url-signature':
        ;(head.signed ??= { signature: '', expires: undefined, methods: undefined, paths: undefined }).signature = v
        break
      case 'url-expires':
      case 'url-methods':
      case 'url-paths':
        ;(head.signed ??= { signature: '', expires: undefined, methods: undefined, paths: undefined })[k.slice(4) as 'expires'] = v
        break
      case 'origin':
        head.origin = v
        break
      case 'access-control-request-method':
        head.corsMethod = v
        break
      case 'access-control-request-headers':
        head.corsHeaders = v
        break
    }
  })
  // RFC 9112 §6.3: both framings at once is a smuggling attempt (uWS closes most of these itself).
  if (head.chunked && head.contentLength !== undefined) head.problem ??= 'Content-Length and Transfer-Encoding together.'
  return head
}

/**
 * The operator's endpoints: pools, flavors, health, per-pool stats (`/v2/…` and `/v1.1/…`). With
 * `adminPort` set they are served there and nowhere else.
 */
const ADMIN_PATH = /^\/v(?:2|1\.1)\/(?:pools|flavors|health|admin)(?:\/|$)/

const NO_ROUTE = 'No resource matches this path.'

/** A request without a credential that proves anything (docs/auth.md). */
const UNAUTHORIZED = JSON.stringify({ title: 'Unauthorized', description: 'The request you have made requires authentication.' })

/** Listens `app` on `bind:port`; resolves with the listen socket. */
function listenOn(app: uWS.TemplatedApp, bind: string, port: number): Promise<uWS.us_listen_socket> {
  return new Promise((resolve, reject) => {
    app.listen(bind, port, (socket) => {
      if (socket === false) reject(new Error(`cannot listen on ${bind}:${port}`))
      else resolve(socket)
    })
  })
}

export class HttpServer {
  readonly #deps: AppDeps
  readonly #routes: RouteTable
  readonly #longPoll: LongPoll
  readonly #auth: Authenticator
  /** Zaqar's WebSocket API at `wsPath` (proxy/websocket.ts); undefined when off. */
  readonly websocket: WebSocketApi | undefined
  /** Undefined: CORS off (no allowed origin). */
  readonly #cors: Cors | undefined
  readonly #app: uWS.TemplatedApp
  /** The admin listener's app, when `adminPort` is set. */
  readonly #adminApp: uWS.TemplatedApp | undefined
  #listenSocket: uWS.us_listen_socket | undefined
  #adminSocket: uWS.us_listen_socket | undefined
  #inflight = 0
  #draining = false
  #idle: (() => void) | undefined

  constructor(deps: AppDeps) {
    this.#deps = deps
    this.#routes = new RouteTable(deps.config.enableV1_1)
    this.#longPoll =
      deps.longPoll ?? new LongPoll({ perProject: deps.config.longPollMaxWaitersPerProject, total: deps.config.longPollMaxWaiters })
    this.#auth = deps.auth ?? NO_AUTH
    this.#cors = Cors.from(deps.config)
    this.#app = uWS.App().any('/*', (res, req) => this.#onRequest(res, req, false))
    this.websocket = deps.config.wsPath === '' ? undefined : new WebSocketApi(this.#app, deps.config, (call, abort) => this.call(call, abort), deps.log, this.#auth, deps.storage)
    if (deps.config.adminPort > 0) this.#adminApp = uWS.App().any('/*', (res, req) => this.#onRequest(res, req, true))
  }

  /** Starts listening (and on `adminPort` when set); resolves with the API port. */
  async listen(): Promise<number> {
    const { bind, port, adminBind, adminPort } = this.#deps.config
    this.#listenSocket = await listenOn(this.#app, bind, port)
    if (this.#adminApp !== undefined) this.#adminSocket = await listenOn(this.#adminApp, adminBind ?? bind, adminPort)
    return uWS.us_socket_local_port(this.#listenSocket)
  }

  get inflight(): number {
    return this.#inflight
  }

  /** Stops accepting connections and resolves when in-flight requests are done (or on timeout). */
  async drain(timeoutMs: number): Promise<void> {
    this.#draining = true
    // Parked long polls answer now (after one more try) rather than hold the drain up.
    this.#longPoll.close()
    this.websocket?.closeAll()
    if (this.#listenSocket !== undefined) uWS.us_listen_socket_close(this.#listenSocket)
    if (this.#adminSocket !== undefined) uWS.us_listen_socket_close(this.#adminSocket)
    this.#listenSocket = undefined
    this.#adminSocket = undefined
    if (this.#inflight === 0) return
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs)
      this.#idle = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  }

  /** Closes every connection, idle keep-alive ones included. Call after `drain`. */
  close(): void {
    // Present in this uWS build, missing from its typings.
    ;(this.#app as unknown as { close(): void }).close()
    if (this.#adminApp !== undefined) (this.#adminApp as unknown as { close(): void }).close()
  }

  #onRequest(res: uWS.HttpResponse, req: uWS.HttpRequest, admin: boolean): void {
    const head = readHead(req)
    const state: RequestState = { aborted: false, handling: false, released: false, admin, started: performance.now(), route: 'unmatched', onAbort: undefined }
    this.#inflight++
    this.#deps.metrics?.inflight.inc()
    res.onAborted(() => {
      state.aborted = true
      state.onAbort?.()
      // An upload cut short never reaches `onData`'s last chunk: nothing else would release it.
      // A request already in a handler keeps its slot until the handler finishes.
      if (!state.handling) this.#release(state)
    })
    const requestId = requestIdFrom(head.requestId)
    const finish = (reply: Reply, close = false): void => {
      this.#write(res, state, reply, requestId, head, close)
      this.#release(state)
    }
    const fail = (err: unknown, close = false): void => finish(errorReply(err, this.#deps.log, requestId), close)

    // Every refusal before the body is read closes the connection: the unread body must never be
    // parsed as the next request, and after ambiguous framing nothing that follows can be trusted.
    if (head.headerBytes > this.#deps.config.maxHeaderBytes) {
      return fail(new MissiveError('header_too_large', `Request headers exceed ${this.#deps.config.maxHeaderBytes} bytes.`), true)
    }
    if (head.problem !== undefined) return fail(new MissiveError('bad_request', head.problem), true)
    if (head.path.length + head.query.length > this.#deps.config.maxUrlBytes) {
      return fail(new MissiveError('uri_too_long', `Request URL exceeds ${this.#deps.config.maxUrlBytes} bytes.`), true)
    }
    let declared: number | null = null
    if (head.contentLength !== undefined) {
      if (!/^\d+$/.test(head.contentLength.trim())) return fail(new MissiveError('invalid_body', 'Invalid Content-Length header.'), true)
      declared = Number(head.contentLength)
    }
    const hardCap = this.#deps.config.maxBodyBytes
    if (declared !== null && declared > hardCap) {
      // Not read: answer at once and close, so the unread body is never parsed as a request.
      return fail(this.#oversize(head, declared), true)
    }
    if ((declared === null || declared === 0) && !head.chunked) {
      state.handling = true
      void this.#handle(head, state, declared, declared === 0 ? new Uint8Array(0) : null, requestId).then(finish, fail)
      return
    }
    // Read the body, capped. Chunks are only valid inside the callback: copy them.
    const chunks: Buffer[] = []
    let size = 0
    res.onData((chunk, isLast) => {
      if (size < 0) return
      size += chunk.byteLength
      if (size > hardCap) {
        size = -1
        return fail(new MissiveError('payload_too_large', `Request body exceeds ${hardCap} bytes.`), true)
      }
      // A copy from Node's buffer pool: `chunk.slice(0)` allocated an ArrayBuffer per request
      // (0.6 µs for a 230-byte post, against 0.1 µs; docs/benchmarks.md, "the sixth wave").
      const copy = Buffer.allocUnsafe(chunk.byteLength)
      copy.set(new Uint8Array(chunk))
      chunks.push(copy)
      if (!isLast) return
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
      state.handling = true
      // Chunked bodies have no Content-Length, which Zaqar treats as no body at all (zaqar/common/transport/wsgi/helpers.py).
      void this.#handle(head, state, declared, declared === null ? null : body, requestId).then(finish, fail)
    })
  }

  /**
   * Runs one API call through the same checks and handlers as an HTTP request, without a
   * connection: the WebSocket transport's entry (proxy/websocket.ts). Errors come back as replies.
   */
  async call(call: ApiCall, abort: AbortHook): Promise<Reply> {
    const head: Head = {
      method: call.method,
      path: call.path,
      query: call.query,
      clientId: call.clientId,
      project: call.project,
      contentType: 'application/json',
      contentLength: call.body === null ? undefined : String(call.body.length),
      chunked: false,
      accept: '',
      requestId: call.requestId,
      authToken: call.authToken,
      idempotencyKey: undefined,
      signed: undefined,
      headerBytes: 0,
      problem: undefined,
      // A WebSocket call is not a browser's cross-origin HTTP request: CORS does not apply.
      origin: undefined,
      corsMethod: undefined,
      corsHeaders: undefined,
    }
    const state: RequestState = { aborted: false, handling: true, released: true, admin: false, started: 0, route: 'websocket', onAbort: undefined }
    // The socket's close reaches a parked long poll through `state` (the hook the app gives handlers).
    abort.onAbort = () => {
      state.aborted = true
      state.onAbort?.()
    }
    const requestId = requestIdFrom(call.requestId)
    try {
      return await this.#handle(head, state, call.body === null ? null : call.body.length, call.body, requestId)
    } catch (err) {
      return errorReply(err, this.#deps.log, requestId)
    }
  }

  /** Gives a request's in-flight slot back, once: on its reply or on an abort, whichever is first. */
  #release(state: RequestState): void {
    if (state.released) return
    state.released = true
    this.#deps.metrics?.inflight.dec()
    if (--this.#inflight === 0 && this.#idle) this.#idle()
  }

  /** The error for a body too large to read: the route's own (Zaqar's wording) or a 413. */
  #oversize(head: Head, declared: number): MissiveError {
    const match = this.#routes.match(head.method, head.path)
    if (match.kind === 'route' && match.route.maxBody !== undefined) {
      const [max, error] = match.route.maxBody(this.#deps.config.limits)
      if (declared > max) return error()
    }
    return new MissiveError('payload_too_large', `Request body exceeds ${this.#deps.config.maxBodyBytes} bytes.`)
  }

  async #handle(head: Head, state: RequestState, contentLength: number | null, body: Uint8Array | null, requestId: string): Promise<Reply> {
    const { config, storage, control, log, metrics } = this.#deps
    if (head.path === '/metrics' && metrics !== undefined && (config.metricsOnApiPort || state.admin)) {
      state.route = '/metrics'
      if (head.method !== 'GET') throw new MissiveError('method_not_allowed', `${head.method} is not allowed on /metrics.`)
      return { status: 200, body: await metrics.exposition(), contentType: METRICS_TYPE }
    }
    if (head.path === '/') {
      state.route = '/'
      if (head.method === 'GET') return versions()
      throw new MissiveError('method_not_allowed', `${head.method} is not allowed on /.`)
    }
    if (head.path === '/openapi.json') {
      // The API's description (docs/openapi.md): public like `/`, needs no headers.
      state.route = '/openapi.json'
      if (head.method === 'GET') return { status: 200, body: openApiJson() }
      throw new MissiveError('method_not_allowed', `${head.method} is not allowed on /openapi.json.`)
    }
    // With an admin listener, each port serves its own half of the API (and the same 404 for
    // the other half, which tells a tenant nothing about the admin API).
    if (this.#adminApp !== undefined && ADMIN_PATH.test(head.path) !== state.admin) throw new MissiveError('route_not_found', NO_ROUTE)
    // A CORS preflight is answered before authentication and routing (oslo's CORS middleware
    // is outside Zaqar's auth middleware): 200, with the CORS headers when it passes.
    if (head.method === 'OPTIONS' && this.#cors !== undefined) {
      return { status: 200, headers: this.#cors.preflightHeaders({ origin: head.origin, requestMethod: head.corsMethod, requestHeaders: head.corsHeaders }) }
    }
    // Authentication first, as Zaqar's auth middleware runs before its routes. Synchronous when
    // nothing must be asked (strategy none, a cached credential): no extra await on the hot path.
    const auth = this.#auth
    // A pre-signed URL is a credential of its own (proxy/auth/signed-url.ts), checked first as in Zaqar.
    let proof =
      head.signed !== undefined && head.signed.signature !== ''
        ? verifySignedRequest(config.signed_url.secret_key, head.signed, head.method, head.path, head.project, Date.now())
        : auth.authenticate(head.authToken)
    if (proof instanceof Promise) proof = await proof
    if (proof === null) return { status: 401, body: UNAUTHORIZED, headers: auth.challenge }
    const identity: Identity = proof
    if (identity.project !== undefined) {
      // A credential bound to a project: X-Project-ID is filled from it, or must name it.
      if (head.project === undefined) head.project = identity.project
      else if (head.project !== identity.project) throw new MissiveError('forbidden', "X-Project-ID is not the credential's project.")
    }
    const match = this.#routes.match(head.method, head.path)
    if (match.kind === 'none') throw new MissiveError('route_not_found', NO_ROUTE)
    if (match.kind === 'method') {
      return {
        status: 405,
        body: JSON.stringify({ title: '405 Method Not Allowed', description: `Allowed methods: ${match.allow.join(', ')}.` }),
        headers: [['allow', match.allow.join(', ')]],
      }
    }
    checkContentType(head.contentType, contentLength !== null)
    const msgpack = checkAccept(head.accept)
    const clientId = checkClientId(head.clientId, config.limits)
    const project = checkProject(head.project)
    const { route, profile, params } = match
    state.route = route.path === '' ? `${profile.prefix}/` : `${profile.prefix}/${route.path}`
    const limiter = this.#deps.limiter
    if (limiter !== undefined) {
      // Requests per second, per project (docs/limits.md): sync unless Redis counts them.
      const limited = limiter.request(project)
      if (limited !== undefined) await limited
    }
    if (params.queue !== undefined) checkQueueIdentity(params.queue, project)
    if (params.topic !== undefined) checkTopicIdentity(params.topic, project)
    if (route.maxBody !== undefined && contentLength !== null) {
      const [max, error] = route.maxBody(config.limits)
      if (contentLength > max) throw error()
    }
    const apiReq: ApiRequest = {
      method: head.method,
      path: head.path,
      query: new Query(head.query),
      params,
      profile,
      project,
      clientId,
      requestId,
      authToken: head.authToken,
      identity,
      auth,
      limiter,
      idempotencyKey: head.idempotencyKey,
      contentType: head.contentType,
      contentLength,
      body,
      config,
      storage,
      control,
      log,
      longPoll: this.#longPoll,
      abort: state,
      pushes: this.websocket?.subscriptions,
      notifier: this.#deps.notifier,
    }
    // Replies for `Accept: application/x-msgpack` are re-encoded; errors stay JSON (docs/api.md).
    return msgpack ? msgpackReply(await route.handler(apiReq)) : route.handler(apiReq)
  }

  #write(res: uWS.HttpResponse, state: RequestState, reply: Reply, requestId: string, head: Head, close: boolean): void {
    const ms = performance.now() - state.started
    const { metrics, config, log } = this.#deps
    metrics?.observe(state.route, head.method, reply.status, ms / 1000)
    if (config.accessLog) {
      // The route template, not the path: queue names and ids stay out of the logs' labels.
      log.info(
        { requestId, project: head.project, method: head.method, route: state.route, status: reply.status, ms: Math.round(ms * 1000) / 1000 },
        'request',
      )
    }
    if (state.aborted) return
    // While draining, tell keep-alive clients to go elsewhere.
    const closeConnection = close || this.#draining
    // A HEAD reply never has a body, whatever its status (RFC 9110 §9.3.2): a proxy reusing the
    // connection would read those bytes as the start of the next response.
    const body = head.method === 'HEAD' ? undefined : (reply.bytes ?? reply.body)
    const cors = this.#cors
    res.cork(() => {
      res.writeStatus(STATUS_TEXT[reply.status] ?? String(reply.status))
      res.writeHeader('x-openstack-request-id', requestId)
      if (body !== undefined) res.writeHeader('content-type', reply.contentType ?? 'application/json')
      if (reply.headers) for (const [k, v] of reply.headers) res.writeHeader(k, v)
      if (cors !== undefined && head.origin !== undefined && head.method !== 'OPTIONS') for (const [k, v] of cors.responseHeaders(head.origin)) res.writeHeader(k, v)
      // Not endWithoutBody(): in this uWS build it announces a bogus Content-Length without a
      // length, and with a non-zero one leaves the response unfinished and the connection dies
      // (measured). An empty end() sends `Content-Length: 0`.
      res.end(body ?? '', closeConnection)
    })
  }
}
