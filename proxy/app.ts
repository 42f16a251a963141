/**
 * The HTTP front end on uWebSockets.js. uWS rules kept here and only here: request data is
 * copied synchronously, `onAborted` is registered before any await, bodies are capped while
 * read, and replies are written inside `res.cork`.
 */
import uWS from 'uWebSockets.js'
import type { Config } from '../shared/config.js'
import { MissiveError } from '../shared/errors.js'
import type { Logger } from '../shared/log.js'
import type { ApiRequest } from './api/context.js'
import { RouteTable } from './api/routes.js'
import { versions } from './api/system.js'
import type { ProxyMetrics } from './metrics.js'
import { Query } from './params.js'
import { CONTENT_TYPE as METRICS_TYPE } from '../shared/metrics.js'
import type { Router } from './router.js'
import {
  checkAccept,
  checkClientId,
  checkContentType,
  checkProject,
  checkQueueIdentity,
  errorReply,
  requestIdFrom,
  STATUS_TEXT,
  type Reply,
} from './transport.js'

export interface AppDeps {
  config: Config
  router: Router
  log: Logger
  /** Absent: no request metrics and no /metrics page. */
  metrics?: ProxyMetrics
}

/** Per-request bookkeeping the reply writer needs. */
interface RequestState {
  aborted: boolean
  started: number
  /** Route template for metrics and logs (`/v2/queues/{queue}/messages`), never the path. */
  route: string
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
  /** Total bytes of header names and values. */
  headerBytes: number
}

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
    headerBytes: 0,
  }
  // forEach, not getHeader: a missing header and an empty one are different errors (API.md §2).
  req.forEach((k, v) => {
    head.headerBytes += k.length + v.length + 4
    switch (k) {
      case 'client-id':
        head.clientId = v
        break
      case 'x-project-id':
        head.project = v
        break
      case 'content-type':
        head.contentType = v
        break
      case 'content-length':
        head.contentLength = v
        break
      case 'transfer-encoding':
        head.chunked = v.toLowerCase().includes('chunked')
        break
      case 'accept':
        head.accept = v
        break
      case 'x-openstack-request-id':
        head.requestId = v
        break
      case 'x-auth-token':
        head.authToken = v
        break
      case 'idempotency-key':
        head.idempotencyKey = v
        break
    }
  })
  return head
}

export class HttpServer {
  readonly #deps: AppDeps
  readonly #routes: RouteTable
  readonly #app: uWS.TemplatedApp
  #listenSocket: uWS.us_listen_socket | undefined
  #inflight = 0
  #draining = false
  #idle: (() => void) | undefined

  constructor(deps: AppDeps) {
    this.#deps = deps
    this.#routes = new RouteTable(deps.config.enableV1_1)
    this.#app = uWS.App().any('/*', (res, req) => this.#onRequest(res, req))
  }

  /** Starts listening; resolves with the bound port. */
  listen(): Promise<number> {
    const { bind, port } = this.#deps.config
    return new Promise((resolve, reject) => {
      this.#app.listen(bind, port, (socket) => {
        if (socket === false) {
          reject(new Error(`cannot listen on ${bind}:${port}`))
          return
        }
        this.#listenSocket = socket
        resolve(uWS.us_socket_local_port(socket))
      })
    })
  }

  get inflight(): number {
    return this.#inflight
  }

  /** Stops accepting connections and resolves when in-flight requests are done (or on timeout). */
  async drain(timeoutMs: number): Promise<void> {
    this.#draining = true
    if (this.#listenSocket !== undefined) uWS.us_listen_socket_close(this.#listenSocket)
    this.#listenSocket = undefined
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
  }

  #onRequest(res: uWS.HttpResponse, req: uWS.HttpRequest): void {
    const head = readHead(req)
    const state: RequestState = { aborted: false, started: performance.now(), route: 'unmatched' }
    res.onAborted(() => {
      state.aborted = true
    })
    this.#inflight++
    this.#deps.metrics?.inflight.inc()
    const requestId = requestIdFrom(head.requestId)
    const finish = (reply: Reply, close = false): void => {
      this.#write(res, state, reply, requestId, head, close)
      this.#deps.metrics?.inflight.dec()
      if (--this.#inflight === 0 && this.#idle) this.#idle()
    }
    const fail = (err: unknown, close = false): void => finish(errorReply(err, this.#deps.log, requestId), close)

    if (head.headerBytes > this.#deps.config.maxHeaderBytes) {
      return fail(new MissiveError('header_too_large', `Request headers exceed ${this.#deps.config.maxHeaderBytes} bytes.`), true)
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
      chunks.push(Buffer.from(chunk.slice(0)))
      if (!isLast) return
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
      // Chunked bodies have no Content-Length, which Zaqar treats as no body at all (API.md §2).
      void this.#handle(head, state, declared, declared === null ? null : body, requestId).then(finish, fail)
    })
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
    const { config, router, log, metrics } = this.#deps
    if (head.path === '/metrics' && metrics !== undefined) {
      state.route = '/metrics'
      if (head.method !== 'GET') throw new MissiveError('method_not_allowed', `${head.method} is not allowed on /metrics.`)
      return { status: 200, body: await metrics.exposition(), contentType: METRICS_TYPE }
    }
    if (head.path === '/') {
      state.route = '/'
      if (head.method === 'GET') return versions()
      throw new MissiveError('method_not_allowed', `${head.method} is not allowed on /.`)
    }
    const match = this.#routes.match(head.method, head.path)
    if (match.kind === 'none') throw new MissiveError('route_not_found')
    if (match.kind === 'method') {
      return {
        status: 405,
        body: JSON.stringify({ title: '405 Method Not Allowed', description: `Allowed methods: ${match.allow.join(', ')}.` }),
        headers: [['Allow', match.allow.join(', ')]],
      }
    }
    checkContentType(head.contentType, contentLength !== null)
    checkAccept(head.accept)
    const clientId = checkClientId(head.clientId, config.limits)
    const project = checkProject(head.project)
    const { route, profile, params } = match
    state.route = route.path === '' ? `${profile.prefix}/` : `${profile.prefix}/${route.path}`
    if (params.queue !== undefined) checkQueueIdentity(params.queue, project)
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
      idempotencyKey: head.idempotencyKey,
      contentType: head.contentType,
      contentLength,
      body,
      config,
      router,
      log,
    }
    return route.handler(apiReq)
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
    res.cork(() => {
      res.writeStatus(STATUS_TEXT[reply.status] ?? String(reply.status))
      res.writeHeader('X-Openstack-Request-Id', requestId)
      if (reply.body !== undefined) res.writeHeader('Content-Type', reply.contentType ?? 'application/json')
      if (reply.headers) for (const [k, v] of reply.headers) res.writeHeader(k, v)
      // Not endWithoutBody(): without an explicit length this uWS build announces a bogus
      // Content-Length and the connection dies. An empty end() sends `Content-Length: 0`.
      res.end(reply.body ?? '', closeConnection)
    })
  }
}
