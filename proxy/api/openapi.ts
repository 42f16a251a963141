/**
 * The OpenAPI 3.1 document of the HTTP API: v2 (tenants) and the admin API (pools, flavors,
 * health, Missive's /v2/admin routes), served at `GET /openapi.json` (docs/openapi.md). v1.1 is
 * the same handlers under `/v1.1` with Zaqar's v1.1 deltas (docs/api.md) and is not described
 * separately.
 *
 * Kept honest by tests/openapi/openapi.test.ts: every route of the route table (routes.ts) must
 * have an operation here, the document must validate against the OpenAPI 3.1 schema, and live
 * responses of every operation must validate against the schemas given here.
 * Shapes follow zaqar/transport/wsgi/v2_0/ (and docs/api.md where Missive differs).
 */
import { ROUTES } from './routes.js'

type Schema = Record<string, unknown>

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` })
const int = { type: 'integer' }
const str = { type: 'string' }
const arrayOf = (items: Schema): Schema => ({ type: 'array', items })
const obj = (properties: Record<string, Schema>, required: string[] = Object.keys(properties)): Schema => ({ type: 'object', properties, required })

const SCHEMAS: Record<string, Schema> = {
  Error: { ...obj({ title: str, description: str }), description: 'Every 4xx and 5xx answer.' },
  Link: obj({ rel: str, href: str }),
  Links: arrayOf(ref('Link')),
  Metadata: { type: 'object', description: 'Queue metadata; keys starting with `_` are reserved (docs/api.md).' },
  Queue: obj({ name: str, href: str, metadata: ref('Metadata') }, ['name', 'href']),
  QueueList: obj({ queues: arrayOf(ref('Queue')), links: ref('Links'), count: int }, ['queues', 'links']),
  TopicList: obj({ topics: arrayOf(ref('Queue')), links: ref('Links') }),
  MessageRef: obj({ href: str, age: { type: 'number' }, created: str }),
  QueueStats: obj({
    messages: obj({ claimed: int, free: int, total: int, oldest: ref('MessageRef'), newest: ref('MessageRef') }, ['claimed', 'free', 'total']),
  }),
  Message: {
    ...obj({ id: str, href: str, ttl: int, age: { type: 'number' }, body: {}, checksum: str }, ['id', 'href', 'ttl', 'age', 'body']),
    description: 'The body is any JSON value, as posted.',
  },
  PoppedMessage: obj({ id: str, ttl: int, age: { type: 'number' }, body: {}, claim_id: { type: ['string', 'null'] }, claim_count: int }, ['id', 'ttl', 'age', 'body']),
  MessageList: obj({ messages: arrayOf(ref('Message')), links: ref('Links') }),
  Messages: obj({ messages: arrayOf(ref('Message')) }),
  Popped: obj({ messages: arrayOf(ref('PoppedMessage')) }),
  NewMessages: obj({ messages: { ...arrayOf(obj({ body: {}, ttl: int, delay: int }, ['body'])), minItems: 1 } }),
  PostResult: obj({ resources: arrayOf(str) }),
  ClaimRequest: obj({ ttl: int, grace: int }, []),
  Claim: obj({ age: { type: 'number' }, ttl: int, href: str, messages: arrayOf(ref('Message')) }),
  Pool: obj({ name: str, uri: str, weight: int, flavor: { type: ['string', 'null'] }, href: str, options: { type: 'object' } }, ['name', 'uri', 'weight', 'flavor', 'href']),
  PoolList: obj({ pools: arrayOf(ref('Pool')), links: ref('Links') }),
  PoolPut: obj({ uri: str, weight: int, flavor: { type: ['string', 'null'] }, options: { type: 'object', properties: { workers: int } } }, ['uri', 'weight']),
  PoolPatch: obj({ uri: str, weight: int, flavor: { type: ['string', 'null'] }, options: { type: 'object' } }, []),
  Flavor: obj({ name: str, capabilities: arrayOf(str), pool_list: arrayOf(str), href: str }, ['name', 'pool_list', 'href']),
  FlavorList: obj({ flavors: arrayOf(ref('Flavor')), links: ref('Links') }),
  FlavorPut: obj({ pool_list: arrayOf(str), capabilities: { type: 'object' } }, ['pool_list']),
  PoolStats: obj({
    name: str,
    uri: str,
    weight: int,
    flavor: { type: ['string', 'null'] },
    capabilities: arrayOf(str),
    queues: int,
    messages: obj({ claimed: int, free: int, delayed: int, total: int, queues_counted: int, complete: { type: 'boolean' } }),
    storage: obj({ reachable: { type: 'boolean' }, workers: arrayOf(obj({ index: int, reachable: { type: 'boolean' }, ping_seconds: { type: ['number', 'null'] } })) }),
  }),
  Health: {
    type: 'object',
    required: ['catalog_reachable'],
    properties: { catalog_reachable: { type: 'boolean' } },
    additionalProperties: obj({ storage_reachable: { type: 'boolean' }, operation_status: { type: 'object' }, message_volume: obj({ free: int, claimed: int, total: int }) }),
    description: 'Zaqar\'s pooled health: `catalog_reachable`, then one entry per pool.',
  },
  AdminQueues: obj({ queues: arrayOf(obj({ pool: str, project: str, name: str })), links: ref('Links') }),
  TopQueues: obj({
    by: { enum: ['backlog', 'age'] },
    queues: arrayOf(obj({ pool: str, project: str, name: str, free: int, claimed: int, total: int, delayed: int, oldest_age: { type: 'number' } })),
    as_of: { type: ['string', 'null'] },
  }),
  Migration: obj({
    id: str,
    href: str,
    project: str,
    queue: str,
    from_pool: str,
    to_pool: str,
    state: { enum: ['copying', 'switching', 'cleaning', 'cancelling', 'done', 'cancelled', 'failed'] },
    origin: str,
    messages_copied: int,
    bytes_copied: int,
    journal_applied: int,
    remaining: { type: ['integer', 'null'] },
    rate_limit: { type: 'number' },
    messages_per_second: { type: 'number' },
    error: { type: ['string', 'null'] },
    created: str,
    started: { type: ['string', 'null'] },
    switched: { type: ['string', 'null'] },
    finished: { type: ['string', 'null'] },
    pause_ms: { type: ['number', 'null'] },
    runner: { type: ['string', 'null'] },
  }),
  MigrationList: obj({ migrations: arrayOf(ref('Migration')), links: ref('Links') }),
  MigrationCreate: obj({ project: str, queue: str, to_pool: str, rate: { type: 'number', minimum: 0 } }, ['project', 'queue', 'to_pool']),
  Drain: obj({
    pool: str,
    weight: { type: 'number' },
    draining: { type: 'boolean' },
    queues_left: int,
    migrating: int,
    done: { type: 'boolean' },
    max_concurrent: { type: ['integer', 'null'] },
    rate_limit: { type: ['number', 'null'] },
    started: { type: ['string', 'null'] },
  }),
  DrainRequest: obj({ max_concurrent: int, rate: { type: 'number', minimum: 0 } }, []),
  RebalanceRequest: obj({ tolerance: { type: 'number', minimum: 0, exclusiveMaximum: 1 }, max_concurrent: int, rate: { type: 'number', minimum: 0 } }, []),
  Rebalance: obj({
    balanced: { type: 'boolean' },
    tolerance: { type: 'number' },
    pools: arrayOf(obj({ name: str, flavor: { type: ['string', 'null'] }, weight: { type: 'number' }, queues: int, share: { type: 'number' }, target: { type: 'number' } })),
    started: arrayOf(ref('Migration')),
  }),
  SignedUrl: obj({ paths: arrayOf(str), methods: arrayOf(str), project: str, expires: str, signature: str }),
  Subscription: obj({ id: str, source: str, subscriber: str, ttl: int, age: int, options: { type: 'object' }, confirmed: { type: 'boolean' } }),
  SubscriptionList: obj({ subscriptions: arrayOf(ref('Subscription')), links: ref('Links') }),
  SubscriptionCreate: obj({ subscriber: str, ttl: { type: 'integer', minimum: 60 }, options: { type: 'object' } }, ['subscriber']),
  SubscriptionPatch: obj({ subscriber: str, ttl: { type: 'integer', minimum: 60 }, options: { type: 'object' } }, []),
  SubscriptionCreated: obj({ subscription_id: str }),
  Key: obj({ id: str, href: str, project: str, roles: arrayOf(str), description: str, created: str, expires: { type: ['string', 'null'] } }),
  KeyCreated: {
    allOf: [ref('Key'), obj({ key: str })],
    description: 'The new key with its secret (`key`), shown this once (docs/auth.md).',
  },
  KeyList: obj({ keys: arrayOf(ref('Key')), links: ref('Links') }),
  KeyCreate: obj({ project: str, roles: arrayOf(str), description: str, ttl: int }, ['project']),
  RateLimits: {
    ...obj(
      { requestsPerSecond: { type: 'number' }, requestBurst: { type: 'number' }, messagesPerSecond: { type: 'number' }, messageBurst: { type: 'number' }, queuesPerProject: int, messagesPerQueue: int, bytesPerProject: int },
      [],
    ),
    description: 'Rate limits and quotas of a project (docs/limits.md); 0: no limit.',
  },
  ProjectLimits: obj({ project: str, defaults: ref('RateLimits'), override: { anyOf: [ref('RateLimits'), { type: 'null' }] }, effective: ref('RateLimits') }),
  Versions: obj({ versions: arrayOf(obj({ id: str, status: str, updated: str, 'media-types': { type: 'array' }, links: ref('Links') })) }),
  Home: obj({ resources: { type: 'object' } }),
}

const json = (schema: Schema): Schema => ({ content: { 'application/json': { schema } } })
const ok = (description: string, schema?: Schema): Schema => (schema === undefined ? { description } : { description, ...json(schema) })
const errors = (...codes: number[]): Record<string, Schema> =>
  Object.fromEntries([...codes, 503].map((c) => [String(c), { description: ERROR_TEXT[c] ?? 'Error', ...json(ref('Error')) }]))
const ERROR_TEXT: Record<number, string> = {
  400: 'Bad request: a header, parameter or body is invalid',
  403: 'Not authorized (admin routes: no or wrong X-Auth-Token), a claimed message, or a quota exceeded (docs/limits.md)',
  404: 'Not found',
  409: 'Conflict',
  413: 'Body too large',
  503: 'A storage pool does not answer (with Retry-After)',
}

const qp = (name: string, schema: Schema, description: string): Schema => ({ name, in: 'query', required: false, schema, description })
const page = [qp('marker', str, 'Continue after this marker'), qp('limit', int, 'Page size'), qp('detailed', { type: 'boolean' }, 'Include details')]

interface Op {
  summary: string
  admin?: boolean
  params?: Schema[]
  body?: Schema
  responses: Record<string, Schema>
}

/** One operation per route of the route table, keyed `METHOD path` (the table's own path form). */
const OPS: Record<string, Op> = {
  'GET ': { summary: 'The JSON-Home document', responses: { 200: { description: 'JSON-Home', content: { 'application/json-home': { schema: ref('Home') } } }, ...errors(400) } },
  'GET ping': { summary: 'Every worker of every pool answers (use as the health check; needs Client-ID and X-Project-ID)', responses: { 204: ok('All answer'), ...errors(400) } },
  'HEAD ping': { summary: 'As GET ping', responses: { 204: ok('All answer'), 400: ok('Bad headers'), 503: ok('A worker does not answer') } },
  'GET health': { summary: 'Pooled health with Zaqar\'s probe', admin: true, responses: { 200: ok('Health', ref('Health')), ...errors(400, 403) } },
  'GET queues': {
    summary: 'The project\'s queues',
    params: [...page, qp('name', str, 'Substring of the name'), qp('with_count', { type: 'boolean' }, 'Add the project\'s queue count')],
    responses: { 200: ok('A page', ref('QueueList')), ...errors(400) },
  },
  'PUT queues/{queue}': { summary: 'Create a queue', body: ref('Metadata'), responses: { 201: ok('Created'), 204: ok('Already exists'), ...errors(400, 403) } },
  // Pre-signed URLs (docs/notifications.md).
  'POST queues/{queue}/share': {
    summary: 'Sign a URL: the signed paths and methods of this queue need no other credential until it expires',
    body: obj({ paths: arrayOf({ enum: ['messages', 'subscriptions', 'claims'] }), methods: arrayOf(str), expires: str }, []),
    responses: { 200: ok('The signature document', ref('SignedUrl')), ...errors(400) },
  },
  // Subscriptions (docs/notifications.md).
  'POST queues/{queue}/subscriptions': {
    summary: 'Subscribe a webhook or mail address to the queue',
    body: ref('SubscriptionCreate'),
    responses: { 201: ok('Created (or the unconfirmed duplicate\'s id)', ref('SubscriptionCreated')), ...errors(400, 409) },
  },
  'GET queues/{queue}/subscriptions': {
    summary: 'The queue\'s subscriptions, oldest first',
    params: [qp('marker', str, 'A subscription id'), qp('limit', int, '1..max_subscriptions_per_page, default 10')],
    responses: { 200: ok('A page', ref('SubscriptionList')), ...errors(400) },
  },
  'GET queues/{queue}/subscriptions/{subscription}': { summary: 'One subscription', responses: { 200: ok('The subscription', ref('Subscription')), ...errors(400, 404) } },
  'PATCH queues/{queue}/subscriptions/{subscription}': {
    summary: 'Change its subscriber, ttl (restarts its clock) or options',
    body: ref('SubscriptionPatch'),
    responses: { 204: ok('Updated'), ...errors(400, 404, 409) },
  },
  'DELETE queues/{queue}/subscriptions/{subscription}': { summary: 'Unsubscribe', responses: { 204: ok('Deleted (or never existed)'), ...errors(400) } },
  'PUT queues/{queue}/subscriptions/{subscription}/confirm': {
    summary: 'Confirm (or unconfirm) a subscription',
    body: obj({ confirmed: { type: 'boolean' } }),
    responses: { 204: ok('Done'), ...errors(400, 404) },
  },
  'GET queues/{queue}': { summary: 'The queue\'s metadata (with defaults)', responses: { 200: ok('Metadata', ref('Metadata')), ...errors(400) } },
  'PATCH queues/{queue}': {
    summary: 'JSON-Patch the metadata (application/openstack-messaging-v2.0-json-patch)',
    body: { type: 'array' },
    responses: { 200: ok('The new metadata', ref('Metadata')), ...errors(400, 404, 409) },
  },
  'DELETE queues/{queue}': { summary: 'Delete the queue and its messages', responses: { 204: ok('Deleted'), ...errors(400) } },
  'GET queues/{queue}/stats': { summary: 'Message counts, oldest and newest', responses: { 200: ok('Stats', ref('QueueStats')), ...errors(400) } },
  'POST queues/{queue}/purge': { summary: 'Delete every message (and claim)', body: obj({ resource_types: arrayOf(str) }, []), responses: { 204: ok('Purged'), ...errors(400) } },
  'POST queues/{queue}/messages': { summary: 'Post messages', body: ref('NewMessages'), responses: { 201: ok('Their hrefs, in request order', ref('PostResult')), ...errors(400, 403, 413) } },
  'GET queues/{queue}/messages': {
    summary: 'List messages, or get several by id (ids=)',
    params: [qp('marker', str, ''), qp('limit', int, ''), qp('echo', { type: 'boolean' }, ''), qp('include_claimed', { type: 'boolean' }, ''), qp('include_delayed', { type: 'boolean' }, ''), qp('ids', str, 'Comma-separated ids: bulk get')],
    responses: { 200: ok('A page (or the messages named by ids)', { anyOf: [ref('MessageList'), ref('Messages')] }), 404: ok('None of the ids exist', ref('Error')), ...errors(400) },
  },
  'DELETE queues/{queue}/messages': {
    summary: 'Bulk delete (ids=) or pop (pop=N)',
    params: [qp('ids', str, ''), qp('claim_ids', str, ''), qp('pop', int, '')],
    responses: { 200: ok('The popped messages', ref('Popped')), 204: ok('Deleted'), ...errors(400, 403) },
  },
  'GET queues/{queue}/messages/{messageId}': { summary: 'One message', responses: { 200: ok('The message', ref('Message')), ...errors(400, 404) } },
  'DELETE queues/{queue}/messages/{messageId}': { summary: 'Delete one message (claim_id= when claimed)', params: [qp('claim_id', str, '')], responses: { 204: ok('Deleted'), ...errors(400, 403) } },
  'POST queues/{queue}/claims': { summary: 'Claim messages', params: [qp('limit', int, '1..20, default 10')], body: ref('ClaimRequest'), responses: { 201: ok('The claimed messages', ref('Messages')), 204: ok('Nothing to claim'), ...errors(400) } },
  'GET queues/{queue}/claims/{claimId}': { summary: 'A claim', responses: { 200: ok('The claim', ref('Claim')), ...errors(400, 404) } },
  'PATCH queues/{queue}/claims/{claimId}': { summary: 'Renew a claim', body: ref('ClaimRequest'), responses: { 204: ok('Renewed'), ...errors(400, 404) } },
  'DELETE queues/{queue}/claims/{claimId}': { summary: 'Release a claim', responses: { 204: ok('Released'), ...errors(400) } },
  // Topics (docs/notifications.md, "Topics"): a queue's API in a namespace of its own, without claims.
  'GET topics': {
    summary: 'The project\'s topics',
    params: [...page, qp('name', str, 'Substring of the name')],
    responses: { 200: ok('A page', ref('TopicList')), ...errors(400) },
  },
  'PUT topics/{topic}': { summary: 'Create a topic', body: ref('Metadata'), responses: { 201: ok('Created'), 204: ok('Already exists'), ...errors(400, 403) } },
  'GET topics/{topic}': { summary: 'The topic\'s metadata (with defaults)', responses: { 200: ok('Metadata', ref('Metadata')), ...errors(400) } },
  'PATCH topics/{topic}': {
    summary: 'JSON-Patch the metadata (application/openstack-messaging-v2.0-json-patch)',
    body: { type: 'array' },
    responses: { 200: ok('The new metadata', ref('Metadata')), ...errors(400, 404, 409) },
  },
  'DELETE topics/{topic}': { summary: 'Delete the topic and its messages', responses: { 204: ok('Deleted'), ...errors(400) } },
  'GET topics/{topic}/stats': { summary: 'Message counts, oldest and newest', responses: { 200: ok('Stats', ref('QueueStats')), ...errors(400) } },
  'POST topics/{topic}/purge': { summary: 'Delete every message and/or subscription', body: obj({ resource_types: arrayOf(str) }, []), responses: { 204: ok('Purged'), ...errors(400) } },
  'POST topics/{topic}/messages': { summary: 'Post messages: each goes to every subscriber', body: ref('NewMessages'), responses: { 201: ok('Their hrefs, in request order', ref('PostResult')), ...errors(400, 403, 413) } },
  'GET topics/{topic}/messages': {
    summary: 'List messages, or get several by id (ids=)',
    params: [qp('marker', str, ''), qp('limit', int, ''), qp('echo', { type: 'boolean' }, ''), qp('include_delayed', { type: 'boolean' }, ''), qp('ids', str, 'Comma-separated ids: bulk get')],
    responses: { 200: ok('A page (or the messages named by ids)', { anyOf: [ref('MessageList'), ref('Messages')] }), 404: ok('None of the ids exist', ref('Error')), ...errors(400) },
  },
  'DELETE topics/{topic}/messages': {
    summary: 'Bulk delete (ids=) or pop (pop=N)',
    params: [qp('ids', str, ''), qp('pop', int, '')],
    responses: { 200: ok('The popped messages', ref('Popped')), 204: ok('Deleted'), ...errors(400) },
  },
  'GET topics/{topic}/messages/{messageId}': { summary: 'One message', responses: { 200: ok('The message', ref('Message')), ...errors(400, 404) } },
  'DELETE topics/{topic}/messages/{messageId}': { summary: 'Delete one message', responses: { 204: ok('Deleted'), ...errors(400) } },
  'POST topics/{topic}/subscriptions': {
    summary: 'Subscribe a webhook or mail address to the topic',
    body: ref('SubscriptionCreate'),
    responses: { 201: ok('Created (or the unconfirmed duplicate\'s id)', ref('SubscriptionCreated')), ...errors(400, 409) },
  },
  'GET topics/{topic}/subscriptions': {
    summary: 'The topic\'s subscriptions, oldest first',
    params: [qp('marker', str, 'A subscription id'), qp('limit', int, '1..max_subscriptions_per_page, default 10')],
    responses: { 200: ok('A page', ref('SubscriptionList')), ...errors(400) },
  },
  'GET topics/{topic}/subscriptions/{subscription}': { summary: 'One subscription', responses: { 200: ok('The subscription', ref('Subscription')), ...errors(400, 404) } },
  'PATCH topics/{topic}/subscriptions/{subscription}': {
    summary: 'Change its subscriber, ttl (restarts its clock) or options',
    body: ref('SubscriptionPatch'),
    responses: { 204: ok('Updated'), ...errors(400, 404, 409) },
  },
  'DELETE topics/{topic}/subscriptions/{subscription}': { summary: 'Unsubscribe', responses: { 204: ok('Deleted (or never existed)'), ...errors(400) } },
  'PUT topics/{topic}/subscriptions/{subscription}/confirm': {
    summary: 'Confirm (or unconfirm) a subscription',
    body: obj({ confirmed: { type: 'boolean' } }),
    responses: { 204: ok('Done'), ...errors(400, 404) },
  },
  'GET pools': { summary: 'Pools', admin: true, params: page, responses: { 200: ok('A page', ref('PoolList')), ...errors(400, 403) } },
  'PUT pools/{pool}': { summary: 'Create or replace a pool (checks it connects)', admin: true, body: ref('PoolPut'), responses: { 201: ok('Created'), ...errors(400, 403, 409) } },
  'GET pools/{pool}': { summary: 'A pool (uri password masked)', admin: true, params: [qp('detailed', { type: 'boolean' }, '')], responses: { 200: ok('The pool', ref('Pool')), ...errors(400, 403, 404) } },
  'PATCH pools/{pool}': { summary: 'Change a pool', admin: true, body: ref('PoolPatch'), responses: { 200: ok('The pool', ref('Pool')), ...errors(400, 403, 404, 409) } },
  'DELETE pools/{pool}': { summary: 'Delete a pool (refused while queues are placed on it)', admin: true, responses: { 204: ok('Deleted'), ...errors(400, 403, 409) } },
  'GET flavors': { summary: 'Flavors', admin: true, params: page, responses: { 200: ok('A page', ref('FlavorList')), ...errors(400, 403) } },
  'PUT flavors/{flavor}': { summary: 'Create or replace a flavor', admin: true, body: ref('FlavorPut'), responses: { 201: ok('Created'), ...errors(400, 403) } },
  'GET flavors/{flavor}': { summary: 'A flavor', admin: true, responses: { 200: ok('The flavor', ref('Flavor')), ...errors(400, 403, 404) } },
  'PATCH flavors/{flavor}': { summary: 'Replace a flavor\'s pools', admin: true, body: ref('FlavorPut'), responses: { 200: ok('The flavor', ref('Flavor')), ...errors(400, 403, 404) } },
  'DELETE flavors/{flavor}': { summary: 'Delete a flavor', admin: true, responses: { 204: ok('Deleted'), ...errors(400, 403) } },
  'GET admin/pools/{pool}/stats': { summary: 'Queues, messages and worker health of one pool (Missive)', admin: true, responses: { 200: ok('Stats', ref('PoolStats')), ...errors(400, 403, 404) } },
  'GET admin/queues': {
    summary: 'Every project\'s queues, paged (Missive)',
    admin: true,
    params: [qp('pool', str, 'One pool only'), qp('limit', int, '1..1000, default 100'), qp('marker', str, 'From a next link')],
    responses: { 200: ok('A page', ref('AdminQueues')), ...errors(400, 403, 404) },
  },
  'GET admin/queues/top': {
    summary: 'The queues with the most free messages or the oldest message (Missive)',
    admin: true,
    params: [qp('by', { enum: ['backlog', 'age'] }, 'default backlog'), qp('limit', int, '1..100, default 10')],
    responses: { 200: ok('From the last backlog scan', ref('TopQueues')), ...errors(400, 403) },
  },
  // Live migrations (docs/migration.md).
  'POST admin/migrations': {
    summary: 'Move a queue to another pool, live (Missive)',
    admin: true,
    body: ref('MigrationCreate'),
    responses: { 202: ok('Started (Location: the migration)', ref('Migration')), ...errors(400, 403, 404, 409) },
  },
  'GET admin/migrations': {
    summary: 'Migrations, oldest first (Missive)',
    admin: true,
    params: [qp('state', str, 'Only those in this state'), qp('limit', int, '1..100, default 20'), qp('marker', str, 'A migration id')],
    responses: { 200: ok('A page', ref('MigrationList')), ...errors(400, 403) },
  },
  'GET admin/migrations/{migration}': { summary: 'One migration and its progress (Missive)', admin: true, responses: { 200: ok('The migration', ref('Migration')), ...errors(403, 404) } },
  'DELETE admin/migrations/{migration}': {
    summary: 'Cancel a migration before its switch (Missive)',
    admin: true,
    responses: { 202: ok('Cancelling (or cancelled)', ref('Migration')), ...errors(403, 404, 409) },
  },
  'POST admin/pools/{pool}/drain': {
    summary: 'Drain a pool: weight 0, every queue moved to the other pools by weight (Missive)',
    admin: true,
    body: ref('DrainRequest'),
    responses: { 202: ok('Draining', ref('Drain')), ...errors(400, 403, 404, 409) },
  },
  'GET admin/pools/{pool}/drain': { summary: 'A drain\'s progress (Missive)', admin: true, responses: { 200: ok('Progress', ref('Drain')), ...errors(403, 404) } },
  'DELETE admin/pools/{pool}/drain': { summary: 'Stop a drain (Missive)', admin: true, responses: { 204: ok('Stopped'), ...errors(403, 404) } },
  'POST admin/rebalance': {
    summary: 'Move queues so each pool holds its weight\'s share, within a tolerance (Missive)',
    admin: true,
    body: ref('RebalanceRequest'),
    responses: { 202: ok('The shares and the migrations started', ref('Rebalance')), ...errors(400, 403) },
  },
  'GET admin/keys': {
    summary: 'API keys (strategy keys; docs/auth.md), never their secrets',
    admin: true,
    params: [qp('limit', int, '1..1000'), qp('marker', str, '')],
    responses: { 200: ok('A page', ref('KeyList')), ...errors(400, 403, 404) },
  },
  'POST admin/keys': { summary: 'Create an API key (its secret is shown once)', admin: true, body: ref('KeyCreate'), responses: { 201: ok('The key', ref('KeyCreated')), ...errors(400, 403, 404) } },
  'GET admin/keys/{key}': { summary: 'One API key', admin: true, responses: { 200: ok('The key', ref('Key')), ...errors(400, 403, 404) } },
  'DELETE admin/keys/{key}': { summary: 'Revoke an API key', admin: true, responses: { 204: ok('Revoked'), ...errors(400, 403, 404) } },
  'GET admin/limits/{tenant}': { summary: 'A project\'s rate limits and quotas (docs/limits.md)', admin: true, responses: { 200: ok('Defaults, override, in force', ref('ProjectLimits')), ...errors(400, 403, 404) } },
  'PUT admin/limits/{tenant}': { summary: 'Replace a project\'s override of rate limits and quotas', admin: true, body: ref('RateLimits'), responses: { 200: ok('Defaults, override, in force', ref('ProjectLimits')), ...errors(400, 403, 404) } },
  'DELETE admin/limits/{tenant}': { summary: 'Drop a project\'s override', admin: true, responses: { 204: ok('Dropped'), ...errors(400, 403, 404) } },
}

/** The keys of `OPS` every route of the table needs (exported for the drift test). */
export const routeKeys = (): string[] => ROUTES.map((r) => `${r.method} ${r.path}`)

const HEADERS: Schema[] = [
  { name: 'Client-ID', in: 'header', required: true, schema: { type: 'string', format: 'uuid' }, description: 'The client\'s UUID' },
  { name: 'X-Project-ID', in: 'header', required: true, schema: { type: 'string', minLength: 1, maxLength: 256 }, description: 'The tenant' },
]

function build(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const key of routeKeys()) {
    const op = OPS[key]
    if (op === undefined) throw new Error(`openapi.ts: no operation for route ${key}`)
    const [method, path] = key.split(' ') as [string, string]
    const full = path === '' ? '/v2/' : `/v2/${path}`
    const pathParams = [...path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: str }))
    const params = [...HEADERS, ...pathParams, ...(op.params ?? [])]
    const operation: Record<string, unknown> = {
      operationId: `${method.toLowerCase()}${full.replace(/[{}]/g, '').replace(/\/(\w)/g, (_, c: string) => c.toUpperCase()).replace(/[^A-Za-z0-9]/g, '')}`,
      summary: op.summary,
      tags: [op.admin === true ? 'admin' : 'v2'],
      parameters: params,
      responses: op.responses,
    }
    if (op.admin === true) operation.security = [{ adminToken: [] }]
    if (op.body !== undefined) operation.requestBody = { required: true, ...json(op.body) }
    ;(paths[full] ??= {})[method.toLowerCase()] = operation
  }
  paths['/'] = { get: { operationId: 'versions', summary: 'The API versions (no headers needed)', tags: ['v2'], responses: { 300: ok('The versions', ref('Versions')) } } }
  paths['/openapi.json'] = { get: { operationId: 'openapi', summary: 'This document', tags: ['v2'], responses: { 200: ok('OpenAPI 3.1', { type: 'object' }) } } }
  paths['/metrics'] = {
    get: { operationId: 'metrics', summary: 'Prometheus metrics (docs/metrics.md)', tags: ['admin'], responses: { 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: str } } } } },
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Missive',
      version: '2.0',
      description: 'Multi-tenant message queues, wire-compatible with OpenStack Zaqar API v2 (docs/api.md). v1.1 is served under /v1.1 by the same handlers with Zaqar\'s v1.1 deltas.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: 'http://127.0.0.1:8888' }],
    tags: [
      { name: 'v2', description: 'Tenant API' },
      { name: 'admin', description: 'Admin API: X-Auth-Token must be the configured adminToken; on adminPort when it is set' },
    ],
    paths,
    components: {
      schemas: SCHEMAS,
      securitySchemes: { adminToken: { type: 'apiKey', in: 'header', name: 'X-Auth-Token' } },
    },
  }
}

let cached: string | undefined

/** The document as JSON text (built once). */
export function openApiJson(): string {
  cached ??= JSON.stringify(build())
  return cached
}
