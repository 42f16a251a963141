/**
 * Every Redis key name the driver uses is built here.
 *
 * A queue's keys all carry one hash tag, `{<project>/<queue>}` with both parts escaped, so a
 * queue lives in one Redis Cluster slot and every script touches a single slot. Escaping is
 * percent-encoding of the UTF-8 bytes outside `[A-Za-z0-9_.-]` (so `%`, `/`, `:`, `{`, `}` and
 * everything else are encoded): an escaped part never contains `/`, `{`, `}` or `:`, so the tag
 * splits back into (project, queue) in exactly one way and no two (project, queue) pairs share a
 * key. Valid queue names (`[A-Za-z0-9_.-]`) are left as they are, which keeps keys readable.
 * The queue scripts build a queue's keys from its record's key `missive:q:T` by changing the
 * letter (lua/lib.lua, `queue_keys`): the layout below is theirs too, and the part before the
 * first `:{` of every key is `missive:<letter>`.
 *
 * Layout (T = `{<escaped project>/<escaped queue>}`, P = `{<escaped project>}`):
 *
 * | key                 | type | holds                                                          |
 * |---------------------|------|----------------------------------------------------------------|
 * | `missive:q:T`       | HASH | queue record: `meta` (JSON text), `seq` (last sequence number), |
 * |                     |      | `created`, and pre-parsed reserved metadata the scripts read:   |
 * |                     |      | `maxpost`, `ttl`, `delay`, `dlq`, `dlqmax`, `dlqttl`; the expiry |
 * |                     |      | marks' `el`, `emax`, `em`, `eb`, `ec`                            |
 * | `missive:m:T`       | HASH | message id → record, a cmsgpack array: seq, created, ttl,       |
 * |                     |      | expires, visible, claim count, claim id, claim expiry, client   |
 * |                     |      | id, body (one HSET per post batch, not a hash per message)      |
 * | `missive:a:T`       | ZSET | every message, score = seq: FIFO order, list markers            |
 * | `missive:r:T`       | ZSET | ready (visible, unclaimed), score = seq: what claims take       |
 * | `missive:d:T`       | ZSET | delayed, score = visible-at (ms)                               |
 * | `missive:i:T`       | ZSET | in flight (claimed), score = claim expiry (ms)                 |
 * | `missive:e:T`       | ZSET | messages the expiry marks do not cover, score = expiry (ms)     |
 * | `missive:s:T`       | ZSET | the same messages as `e`, score = seq                          |
 * | `missive:t:T`       | ZSET | expiry marks: member = the last seq of a run of messages posted |
 * |                     |      | in order with one expiry, score = that expiry (ms). With `e`    |
 * |                     |      | and `s`: exact totals and GC (lua/lib.lua, "Expiry marks")      |
 * | `missive:c:T`       | HASH | claim id → claim record (cmsgpack: ttl, expires, updated, ids)  |
 * | `missive:x:T`       | ZSET | claim id, score = claim expiry (ms): GC of claims               |
 * | `missive:f:T`       | HASH | a migration's fence on the queue (absent: none): `state`,        |
 * |                     |      | `token`, `to`, `jv` (last journal version), `reset` ('1': a purge |
 * |                     |      | or delete since the journal began). Outlives the other keys.     |
 * | `missive:j:T`       | ZSET | the fence's journal: message id, score = version (oldest first)  |
 * | `missive:l:T`       | STR  | listeners' mark: posts are announced until this time (ms);       |
 * |                     |      | expires on its own (lua/listenQueue.lua). May exist without     |
 * |                     |      | the queue (a listener waiting for a queue not created yet)      |
 * | `missive:k:T:<key>` | STR  | an idempotency key's post: its ids, comma-separated; expires    |
 * |                     |      | (PX) when the key's window ends                                 |
 * | `missive:queues:P`  | ZSET | the project's queue names (raw), score 0: the catalogue that    |
 * |                     |      | `listQueues` pages through with ZRANGEBYLEX (byte order)        |
 * | `missive:sweep`     | ZSET | every queue as `<escaped project>/<escaped queue>`, score 0:    |
 * |                     |      | the background collector's round-robin                         |
 * | `missive:o:T`       | HASH | Redis Cluster pools: the queue's dead-letter outbox, message id |
 * |                     |      | → JSON of the message on its way to the DLQ (claims.ts)         |
 * | `missive:n:T`       | ZSET | Redis Cluster pools: ids this queue received as a DLQ, score =  |
 * |                     |      | when (ms): a repeated move step skips them                      |
 *
 * Message and claim ids are only ever looked up inside their queue's hashes, so an id from
 * another queue or project is simply not found.
 */
import type { QueueRef } from '../../../shared/storage/contract.js'

/** Prefix of every key, so a Redis shared with other software stays readable. */
export const PREFIX = 'missive:'

const SAFE = /^[A-Za-z0-9_.-]*$/

/** Percent-encodes every UTF-8 byte outside `[A-Za-z0-9_.-]`. Injective; the result never holds `/ { } :`. */
export function escapePart(s: string): string {
  if (SAFE.test(s)) return s
  let out = ''
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte)
    out += /[A-Za-z0-9_.-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

/** The inverse of `escapePart`. */
export function unescapePart(s: string): string {
  return Buffer.from(
    s.replace(/%([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))),
    'latin1',
  ).toString('utf8')
}

/** The queue's identity inside the hash tag: `<escaped project>/<escaped queue>`. */
export const queueTag = (ref: QueueRef): string => `${escapePart(ref.project)}/${escapePart(ref.queue)}`

/** The thirteen keys of one queue, and what a script call on the queue passes as KEYS (lua/lib.lua). */
export interface QueueKeys {
  readonly q: string
  readonly m: string
  readonly a: string
  readonly r: string
  readonly d: string
  readonly i: string
  readonly e: string
  readonly c: string
  readonly x: string
  /** The migration fence (shared/storage/migration.ts): read by every client script. */
  readonly f: string
  /** The migration journal. */
  readonly j: string
  /** Messages the expiry marks do not cover, by seq (lua/lib.lua, "Expiry marks"). */
  readonly s: string
  /** The expiry marks: a seq per run of covered messages, score = their expiry. */
  readonly t: string
  /** The same thirteen keys as a list. */
  readonly list: readonly string[]
  /**
   * What a queue script takes as KEYS for the queue: its record's key alone; the script builds
   * the other twelve from it (lua/lib.lua, `queue_keys`), which costs Redis half of what passing
   * them does.
   */
  readonly script: readonly string[]
  /** The listeners' mark (lua/listenQueue.lua): not one of the thirteen, read by posts only. */
  readonly l: string
  /** `script` and `l`: the KEYS of the scripts that read or write the mark. */
  readonly listening: readonly string[]
  /** `queueTag` of the queue (the hash tag without its braces). */
  readonly tag: string
}

/** How many queues' keys are remembered; past that, the oldest remembered go first. */
const KEYS_CACHE_MAX = 10_000

/**
 * Keys already built, by project then queue (two levels, so no separator has to be chosen that
 * a name cannot contain). Every request needs its queue's keys, and building them costs two
 * escapes and ten string concatenations: a profile of the worker put this among its top costs.
 * The oldest entry goes first, one at a time (`remembered` lists them in insertion order, a ring):
 * a pool with a few more queues than this in use keeps most of them, where clearing everything
 * at once had it rebuild them all.
 */
const keysCache = new Map<string, Map<string, QueueKeys>>()
const remembered: QueueRef[] = []
/** Where the next entry goes in `remembered`: once it is full, the oldest entry's place. */
let ringNext = 0

/**
 * The queue record's key, from the queue's tag (`queueTag`): all a queue script is given
 * (`QueueKeys.script`). The collector's sweep, which reads tags, builds it with nothing else.
 */
export const recordKey = (tag: string): string => `${PREFIX}q:{${tag}}`

/** The keys of `ref`, built afresh (`queueKeys` caches them). */
export function buildKeys(ref: QueueRef): QueueKeys {
  const tag = queueTag(ref)
  const k = (kind: string): string => `${PREFIX}${kind}:{${tag}}`
  const q = recordKey(tag), m = k('m'), a = k('a'), r = k('r'), d = k('d'), i = k('i'), e = k('e'), c = k('c'), x = k('x'), f = k('f'), j = k('j'), s = k('s'), t = k('t'), l = k('l')
  const list = [q, m, a, r, d, i, e, c, x, f, j, s, t]
  // Frozen: one object is shared by every call on the queue.
  return Object.freeze({ q, m, a, r, d, i, e, c, x, f, j, s, t, list: Object.freeze(list), script: Object.freeze([q]), l, listening: Object.freeze([q, l]), tag })
}

/** The keys of `ref`, all carrying the hash tag `{<escaped project>/<escaped queue>}` (cached). */
export function queueKeys(ref: QueueRef): QueueKeys {
  let byQueue = keysCache.get(ref.project)
  const cached = byQueue?.get(ref.queue)
  if (cached !== undefined) return cached
  const keys = buildKeys(ref)
  const oldest = remembered[ringNext]
  if (oldest !== undefined) {
    const queues = keysCache.get(oldest.project)!
    queues.delete(oldest.queue)
    if (queues.size === 0) keysCache.delete(oldest.project)
    // The eviction may have removed this project's map.
    if (oldest.project === ref.project) byQueue = keysCache.get(ref.project)
  }
  remembered[ringNext] = { project: ref.project, queue: ref.queue }
  ringNext = (ringNext + 1) % KEYS_CACHE_MAX
  if (byQueue === undefined) {
    byQueue = new Map()
    keysCache.set(ref.project, byQueue)
  }
  byQueue.set(ref.queue, keys)
  return keys
}

/** How many queues' keys are remembered now (tests). */
export const cachedKeysCount = (): number => remembered.length

/** The project's queue catalogue (hash tag `{<escaped project>}`: no `/`, so never a queue's tag). */
export const catalogueKey = (project: string): string => `${PREFIX}queues:{${escapePart(project)}}`

/**
 * The record of one idempotency key of a queue (a STRING holding the post's ids, with the
 * window as its expiry): same hash tag as the queue, so the post script can write it.
 */
export const idempotencyKey = (keys: QueueKeys, key: string): string => `${PREFIX}k:{${keys.tag}}:${escapePart(key)}`

/** A queue's dead-letter outbox (Cluster pools; lua/claimMessages.lua, claims.ts). */
export const outboxKey = (keys: QueueKeys): string => `${PREFIX}o:{${keys.tag}}`

/** The ids a queue received as a dead-letter queue, recently (Cluster pools; lua/deadLetterPut.lua). */
export const receivedKey = (keys: QueueKeys): string => `${PREFIX}n:{${keys.tag}}`

/** The set of every queue tag, walked by the background collector. */
export const SWEEP_KEY = `${PREFIX}sweep`

/** The queue a sweep member names. */
export function refOfTag(tag: string): QueueRef {
  const slash = tag.indexOf('/')
  return { project: unescapePart(tag.slice(0, slash)), queue: unescapePart(tag.slice(slash + 1)) }
}
