/**
 * Configuration: one JSON file named by `MISSIVE_CONFIG`, then environment overrides, validated
 * once at start-up (zod). Every process of a deployment gets the same resolved config from the
 * supervisor, so there is one place that decides what a setting means.
 */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { z } from 'zod'
import { boolText, intText, parseText } from './config-text.js'

/** Zaqar's `[transport]` limits (zaqar/conf/transport.py; docs/configuration.md), under the same names. */
export const LimitsSchema = z
  .object({
    default_message_ttl: z.int().min(60).default(3600),
    default_claim_ttl: z.int().min(60).default(300),
    default_claim_grace: z.int().min(60).default(60),
    max_queues_per_page: z.int().min(1).default(20),
    max_pools_per_page: z.int().min(1).default(20),
    max_flavors_per_page: z.int().min(1).default(20),
    max_messages_per_page: z.int().min(1).default(20),
    max_messages_per_claim_or_pop: z.int().min(1).default(20),
    max_queue_metadata: z.int().min(1).default(65536),
    max_messages_post_size: z.int().min(1).default(262144),
    max_message_ttl: z.int().min(60).default(1209600),
    max_message_delay: z.int().min(0).default(900),
    max_claim_ttl: z.int().min(60).default(43200),
    max_claim_grace: z.int().min(60).default(43200),
    /** `strict`: Client-ID must be a UUID; `off`: only its length is checked. */
    client_id_uuid_safe: z.enum(['strict', 'off']).default('strict'),
    min_length_client_id: z.int().min(1).default(10),
    max_length_client_id: z.int().min(1).default(36),
    /** Bulk delete by ids must also carry `claim_ids` that hold each message. */
    message_delete_with_claim_id: z.boolean().default(false),
    /**
     * Most messages one POST may carry; 0: no limit (Zaqar has none). Not Zaqar's: a 256 KiB
     * post of tiny messages holds 20,000, which cost the proxy ~30 ms of CPU to parse and check
     * (docs/configuration.md).
     */
    max_messages_per_post: z.int().min(0).default(1000),
    /** Seconds a post's `Idempotency-Key` is remembered (docs/api.md, "Safe retries"). */
    idempotency_window: z.int().min(1).max(86400).default(300),
    /** Seconds a subscription lives when its creation gives no `ttl` (docs/notifications.md). */
    default_subscription_ttl: z.int().min(60).default(3600),
    max_subscriptions_per_page: z.int().min(1).default(20),
    /** URI schemes a subscriber may use (Zaqar's list minus `trust+http(s)`, which needs Keystone). */
    subscriber_types: z.array(z.enum(['http', 'https', 'mailto'])).default(['http', 'https', 'mailto']),
  })
  .strict()

export type Limits = z.infer<typeof LimitsSchema>

/** Live migrations (docs/migration.md). */
export const MigrationSchema = z
  .object({
    /** Copy rate of one migration, messages per second (0: unlimited); a request may set its own. */
    rate: z.number().min(0).default(20000),
    /** Messages per copy batch (and journal entries per page); stores take at most 1000 (`MIGRATION_BATCH_MAX`). */
    batch: z.int().min(1).max(1000).default(256),
    /** Migrations one proxy's runner works on at once; 0: this proxy runs none. */
    concurrency: z.int().min(0).max(256).default(4),
    /** A runner's catalog lease, ms: how soon another proxy takes over from one that died. */
    leaseMs: z.int().min(500).max(600000).default(5000),
    /** How often a runner asks the catalog for work (and drains are topped up), ms. */
    pollMs: z.int().min(50).max(60000).default(1000),
    /** Queues a pool drain moves at once, unless the drain request sets `max_concurrent`. */
    drainConcurrency: z.int().min(1).max(256).default(4),
  })
  .strict()

/** Notifications: subscriptions and their delivery (docs/notifications.md). */
export const NotificationSchema = z
  .object({
    /**
     * Zaqar's `[notification] require_confirmation`: only confirmed subscriptions are notified
     * (`PUT …/subscriptions/<id>/confirm`). Off: every live subscription is.
     */
    require_confirmation: z.boolean().default(false),
    /**
     * Key from which each subscription's signing secret is derived (HMAC-SHA256 of the id):
     * webhook requests then carry `X-Missive-Signature`. Unset: `signed_url.secret_key`; neither: unsigned.
     */
    signing_key: z.string().min(1).optional(),
    /** One delivery attempt's limit, ms (connect to end of response). */
    timeout_ms: z.int().min(100).max(600_000).default(5000),
    /** Delivery attempts in flight at once in one proxy, all subscribers together. */
    max_concurrent: z.int().min(1).max(10_000).default(64),
    /**
     * Host names, addresses and CIDRs webhooks may reach although they are loopback, private or
     * link-local (refused by default: docs/notifications.md).
     */
    allow_hosts: z.array(z.string().min(1)).default([]),
    /** Zaqar's `smtp_command`: a sendmail-compatible command that reads the mail on stdin (split on spaces). */
    smtp_command: z.string().min(1).default('/usr/sbin/sendmail -t -oi'),
  })
  .strict()

/** Pre-signed URLs (docs/notifications.md, "Pre-signed URLs"): Zaqar's `[signed_url]` group. */
export const SignedUrlSchema = z
  .object({
    /** The HMAC key; unset: `POST …/share` answers 400 and every signed request 403. Keep it secret. */
    secret_key: z.string().min(1).optional(),
  })
  .strict()

/** Authentication (docs/auth.md). */
export const AuthSchema = z
  .object({
    /** `none`: `X-Project-ID` is trusted as sent; `keys`: API keys (docs/auth.md). */
    strategy: z.enum(['none', 'keys', 'keystone']).default('none'),
    /** How long a proxy trusts a checked API key before asking the catalog again (revocation delay on other proxies), ms. */
    keyCacheMs: z.int().min(0).max(600000).default(1000),
    /** Most credentials one proxy caches. */
    cacheEntries: z.int().min(1).default(10000),
    /** Strategy `keystone` (docs/auth.md). */
    keystone: z
      .object({
        /** Keystone's public endpoint (`http://host:5000` or `…/v3`). */
        url: z.url(),
        /** The service user Missive validates tokens with (Keystone role `service` or `admin`). */
        username: z.string().min(1),
        password: z.string().min(1),
        projectName: z.string().min(1).default('service'),
        userDomainName: z.string().min(1).default('Default'),
        projectDomainName: z.string().min(1).default('Default'),
        /** keystonemiddleware's `token_cache_time`: longest a validation is reused, s; 0: never. */
        cacheSeconds: z.int().min(0).max(86400).default(300),
        /** Each call to Keystone, ms (503 beyond). */
        timeoutMs: z.int().min(100).default(5000),
        /** Announced in `WWW-Authenticate` on a 401; default `url`. */
        wwwAuthenticateUri: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((a) => a.strategy !== 'keystone' || a.keystone !== undefined, { message: 'auth.strategy "keystone" needs auth.keystone', path: ['keystone'] })

/** Per-project rate limits (docs/limits.md). A rate of 0 is no limit. */
export const RateLimitsSchema = z
  .object({
    /** Off: no limit is checked and the limits admin API answers 404. */
    enabled: z.boolean().default(false),
    requestsPerSecond: z.number().min(0).default(0),
    /** Most requests at once after a quiet spell; 0: one second's worth. */
    requestBurst: z.number().min(0).default(0),
    messagesPerSecond: z.number().min(0).default(0),
    /** Most messages at once after a quiet spell; 0: one second's worth. */
    messageBurst: z.number().min(0).default(0),
    /** How long a proxy reuses a project's override before reading the catalog again, ms. */
    overrideCacheMs: z.int().min(0).max(600000).default(1000),
  })
  .strict()

/** Quotas per project (docs/limits.md, "Quotas"): the defaults; per-project overrides live in the catalog. */
export const QuotasSchema = z
  .object({
    /** Off: nothing is counted or refused (no cost on any request). */
    enabled: z.boolean().default(false),
    /** Queues a project may have; 0: no quota. */
    queuesPerProject: z.int().min(0).default(0),
    /** Unexpired messages one queue may hold; 0: no quota. */
    messagesPerQueue: z.int().min(0).default(0),
    /**
     * Bytes a project's messages may take in the stores; 0: no quota. Enforced from the backlog
     * scan's sums, with a bounded overshoot (docs/limits.md, "Stored bytes per project").
     */
    bytesPerProject: z.int().min(0).default(0),
  })
  .strict()

/** CORS (docs/auth.md, "CORS"): oslo.middleware's options with Zaqar's defaults. */
export const CorsSchema = z
  .object({
    /** Origins allowed to call the API from a browser (`https://app.example.com`, or `*`). Empty: CORS off. */
    allowedOrigins: z.array(z.string().min(1)).default([]),
    allowCredentials: z.boolean().default(true),
    exposeHeaders: z.array(z.string().min(1)).default(['X-Auth-Token', 'X-Subject-Token', 'X-Service-Token', 'X-OpenStack-Request-ID']),
    /** Seconds a browser may cache a preflight; 0: not sent. */
    maxAge: z.int().min(0).default(3600),
    allowMethods: z.array(z.string().min(1)).default(['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'HEAD']),
    /** Zaqar's list plus the headers Missive reads that it lacks (X-Project-ID, Idempotency-Key). */
    allowHeaders: z
      .array(z.string().min(1))
      .default([
        'X-Auth-Token',
        'X-Identity-Status',
        'X-Roles',
        'X-Service-Catalog',
        'X-User-Id',
        'X-Tenant-Id',
        'X-OpenStack-Request-ID',
        'X-Trace-Info',
        'X-Trace-HMAC',
        'Client-id',
        'X-Project-ID',
        'Idempotency-Key',
      ]),
  })
  .strict()

export const ConfigSchema = z
  .object({
    /** Address the proxy listens on. */
    bind: z.string().min(1).default('127.0.0.1'),
    port: z.int().min(0).max(65535).default(8888),
    /** Where the embedded stores, worker sockets and the catalog live. */
    dataDir: z.string().min(1).default('./data'),
    /**
     * The default pool's storage URI. `sqlite:` (or `sqlite:<path>`, relative to dataDir) is the
     * embedded store.
     */
    defaultPool: z.string().min(1).default('sqlite:'),
    /**
     * The catalog store (pools, flavors, placements): `sqlite:<path>` (relative to dataDir) or
     * `redis://…` to share one catalog between several hosts. Unset: `<dataDir>/catalog.sqlite`.
     */
    catalog: z.string().min(1).optional(),
    /**
     * Worker processes serving the default pool. SQLite has one writer: keep 1 there. 0: no
     * worker, the proxy runs the pool's driver itself (proxy/embedded.ts). "auto": 0 for a Redis
     * pool on this host when the host has under 3 CPUs, else 1 (shared/auto-workers.ts).
     */
    workers: z.union([z.int().min(0).max(64), z.literal('auto')]).default('auto'),
    /**
     * V8 semi-space (MB) of the proxy and the workers (supervisor/node-flags.ts): a larger young
     * generation than V8's default 16 MB. 0: V8's default.
     */
    semiSpaceMb: z.int().min(0).max(1024).default(32),
    /**
     * `durable`: a 201 means the messages survive power loss (SQLite synchronous=FULL).
     * `fast`: they survive a process crash but the last ~second may be lost on power loss.
     */
    durability: z.enum(['durable', 'fast']).default('durable'),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Serve the deprecated v1.1 API as an alias of v2 (docs/api.md). */
    enableV1_1: z.boolean().default(true),
    /** On SIGTERM, how long in-flight requests may take before the process exits anyway. */
    drainTimeoutMs: z.int().min(0).default(10000),
    /** Largest request body accepted at all, whatever the route (a safety cap on memory). */
    maxBodyBytes: z.int().min(1024).default(1048576),
    /**
     * Largest total size of request headers (431 beyond). uWS itself resets connections whose
     * headers do not fit its buffer, well above this default.
     */
    maxHeaderBytes: z.int().min(1024).default(16384),
    /**
     * Longest request target (path plus query string) answered; 414 beyond. uWS itself resets
     * connections whose request head exceeds about 128 KiB (docs/security.md).
     */
    maxUrlBytes: z.int().min(1024).default(16384),
    /** Serve Prometheus metrics at `/metrics` (and collect them). */
    metrics: z.boolean().default(true),
    /** Also serve `/metrics` on this port (admin network), besides the API port. 0: off. */
    metricsPort: z.int().min(0).max(65535).default(0),
    /** Address the `metricsPort` listener binds. Unset: `bind`. */
    metricsBind: z.string().min(1).optional(),
    /**
     * Serve `/metrics` on the API port too. Turn off once scrapers use `metricsPort`: the API
     * port is the tenants', and a scrape takes no token.
     */
    metricsOnApiPort: z.boolean().default(true),
    /**
     * How long an aggregated scrape (proxy + every worker) is reused, in ms; concurrent scrapes
     * always share one collection. 0: collect for every scrape.
     */
    metricsCacheMs: z.int().min(0).default(1000),
    /** Log one line per request (request id, project, route, status, duration) at info level. */
    accessLog: z.boolean().default(true),
    /** How long the proxy waits for a worker's answer before replying 503. */
    rpcTimeoutMs: z.int().min(1).default(30000),
    /**
     * How often a proxy checks the catalog's version for pool, flavor and placement changes, ms.
     * A proxy routes on what it last saw, and a migration's fence covers the rest
     * (docs/migration.md).
     */
    catalogPollMs: z.int().min(10).max(3_600_000).default(250),
    /**
     * How long a request refused by a live migration's switch waits for the switch to finish
     * before it answers 503 with Retry-After, ms (docs/migration.md).
     */
    migrationSwitchWaitMs: z.int().min(0).max(60_000).default(3000),
    /** How often the proxy and the supervisor check that each worker answers (docs/operations.md). */
    workerHeartbeatMs: z.int().min(10).default(1000),
    /**
     * A worker that answers nothing for this long is hung: the proxy fails its calls with 503 at
     * once and the supervisor SIGKILLs and restarts it. At least two heartbeats; 0: never.
     */
    workerHungAfterMs: z.int().min(0).default(5000),
    /**
     * Failure isolation (docs/ha.md): each pool worker's circuit breaker opens after this many
     * calls in a row fail because the store or worker cannot be reached; its calls then get 503 at once.
     */
    poolBreakerFailures: z.int().min(1).default(3),
    /** A pool with calls waiting and nothing answered for this long is stalled: they get 503 and its breaker opens. 0: never. */
    poolStallMs: z.int().min(0).default(2000),
    /** How often each pool's store is checked (an open breaker closes on a good check). 0: never. */
    poolCheckMs: z.int().min(0).default(500),
    /**
     * Admin credential: requests sending it as `X-Auth-Token` may call admin endpoints
     * (`/v2/health`). Unset: the admin API answers 403.
     */
    adminToken: z.string().optional(),
    /**
     * Serve the admin API (pools, flavors, health, pool stats) and `/metrics` on this port, and
     * the admin API nowhere else (the API port answers 404 for it). 0: the admin API is on the
     * API port, guarded by `adminToken` alone.
     */
    adminPort: z.int().min(0).max(65535).default(0),
    /** Address the `adminPort` listener binds. Unset: `bind`. */
    adminBind: z.string().min(1).optional(),
    /** Longest `wait` (seconds) a long-polling claim or listing may ask for; 0: no long polling (docs/api.md, "Long polling"). */
    longPollMaxWait: z.int().min(0).max(3600).default(20),
    /** Long-polling requests one project may have waiting at once in one proxy; 429 beyond. */
    longPollMaxWaitersPerProject: z.int().min(0).default(1000),
    /** Long-polling requests waiting at once in one proxy, all projects together; 429 beyond. */
    longPollMaxWaiters: z.int().min(0).default(50000),
    /** Path of Zaqar's WebSocket API on the API port (docs/websocket.md); empty: no WebSocket API. */
    wsPath: z.union([z.literal(''), z.string().regex(/^\/[A-Za-z0-9._~\/-]*$/)]).default('/v2/ws'),
    /** Largest WebSocket frame accepted; a larger one closes the socket (1009). */
    wsMaxFrameBytes: z.int().min(1024).default(1048576),
    /** Unsent bytes a socket may have queued; beyond, it is closed (1008): slow readers never grow memory. */
    wsMaxBackpressure: z.int().min(1024).default(1048576),
    /** Seconds a socket may stay silent (pings are sent automatically) before it is closed; 0: never. */
    wsIdleTimeout: z.int().min(0).max(960).default(120),
    /** Requests of one socket running at once; 429 frames beyond. */
    wsMaxInflight: z.int().min(1).default(32),
    /** WebSocket connections open at once in one proxy; the upgrade is refused (503) beyond. */
    wsMaxSockets: z.int().min(0).default(10000),
    /** WebSocket connections of one project at once in one proxy; 429 and close beyond. */
    wsMaxSocketsPerProject: z.int().min(1).default(1000),
    /** Push subscriptions one socket may hold. */
    wsMaxSubscriptionsPerSocket: z.int().min(1).default(100),
    /**
     * Least time from the start of one background backlog scan pass to the start of the next, ms
     * (proxy/backlog.ts: /metrics backlog, the admin top queues, stored bytes per project).
     */
    backlogScanMs: z.int().min(50).max(3600000).default(10000),
    limits: LimitsSchema.default(() => LimitsSchema.parse({})),
    /** Live migrations, drains and rebalancing (docs/migration.md). */
    migration: MigrationSchema.default(() => MigrationSchema.parse({})),
    auth: AuthSchema.default(() => AuthSchema.parse({})),
    /** Subscriptions and notification delivery (docs/notifications.md). */
    notification: NotificationSchema.default(() => NotificationSchema.parse({})),
    /** Pre-signed URLs (docs/notifications.md). */
    signed_url: SignedUrlSchema.default(() => SignedUrlSchema.parse({})),
    rateLimits: RateLimitsSchema.default(() => RateLimitsSchema.parse({})),
    quotas: QuotasSchema.default(() => QuotasSchema.parse({})),
    cors: CorsSchema.default(() => CorsSchema.parse({})),
  })
  .strict()

export type Config = z.infer<typeof ConfigSchema>

/** Environment variables and the config keys they override. */
type EnvType = 'string' | 'int' | 'bool' | 'workers'

const ENV: Record<string, { key: keyof Config; type: EnvType }> = {
  MISSIVE_BIND: { key: 'bind', type: 'string' },
  MISSIVE_PORT: { key: 'port', type: 'int' },
  MISSIVE_DATA_DIR: { key: 'dataDir', type: 'string' },
  MISSIVE_DEFAULT_POOL: { key: 'defaultPool', type: 'string' },
  MISSIVE_CATALOG: { key: 'catalog', type: 'string' },
  MISSIVE_WORKERS: { key: 'workers', type: 'workers' },
  MISSIVE_SEMI_SPACE_MB: { key: 'semiSpaceMb', type: 'int' },
  MISSIVE_DURABILITY: { key: 'durability', type: 'string' },
  MISSIVE_LOG_LEVEL: { key: 'logLevel', type: 'string' },
  MISSIVE_ENABLE_V1_1: { key: 'enableV1_1', type: 'bool' },
  MISSIVE_ADMIN_TOKEN: { key: 'adminToken', type: 'string' },
  MISSIVE_ADMIN_PORT: { key: 'adminPort', type: 'int' },
  MISSIVE_ADMIN_BIND: { key: 'adminBind', type: 'string' },
  MISSIVE_METRICS: { key: 'metrics', type: 'bool' },
  MISSIVE_METRICS_PORT: { key: 'metricsPort', type: 'int' },
  MISSIVE_METRICS_BIND: { key: 'metricsBind', type: 'string' },
  MISSIVE_METRICS_ON_API_PORT: { key: 'metricsOnApiPort', type: 'bool' },
  MISSIVE_METRICS_CACHE_MS: { key: 'metricsCacheMs', type: 'int' },
  MISSIVE_ACCESS_LOG: { key: 'accessLog', type: 'bool' },
}

/** Every environment variable `loadConfig` reads, `MISSIVE_CONFIG` first (for help texts). */
export const ENV_VARIABLES: readonly string[] = ['MISSIVE_CONFIG', ...Object.keys(ENV)]

export class ConfigError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

/** `workers`: an integer, or `auto` in any case. */
const workersText = z.union([z.string().trim().toLowerCase().pipe(z.literal('auto')), intText], { error: 'must be an integer or "auto"' })

/** How each kind of environment value is read (shared/config-text.ts: the rule every text setting follows). */
const ENV_TEXT = { string: z.string(), int: intText, bool: boolText, workers: workersText } as const

function envValue(name: string, raw: string, type: EnvType): unknown {
  const r = parseText<unknown>(ENV_TEXT[type], raw)
  if (!r.ok) throw new ConfigError(`${name} ${r.problem}, got "${raw}"`)
  return r.value
}

/**
 * Resolves the configuration: file (if `MISSIVE_CONFIG` names one), then environment, then
 * defaults. Throws `ConfigError` with every problem listed, naming the offending key.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  let raw: Record<string, unknown> = {}
  const file = env.MISSIVE_CONFIG
  if (file) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (err) {
      throw new ConfigError(`cannot read MISSIVE_CONFIG file ${file}: ${(err as Error).message}`)
    }
    try {
      raw = JSON.parse(text) as Record<string, unknown>
    } catch (err) {
      throw new ConfigError(`MISSIVE_CONFIG file ${file} is not valid JSON: ${(err as Error).message}`)
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      throw new ConfigError(`MISSIVE_CONFIG file ${file} must hold a JSON object`)
    }
  }
  for (const [name, { key, type }] of Object.entries(ENV)) {
    const v = env[name]
    if (v !== undefined && v !== '') raw[key] = envValue(name, v, type)
  }
  return parseConfig(raw)
}

/** Validates a config object (from a file, a test, or the supervisor's hand-off). */
export function parseConfig(raw: unknown): Config {
  const result = ConfigSchema.safeParse(raw)
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`)
  }
  const config = result.data
  config.dataDir = resolve(config.dataDir)
  return config
}
