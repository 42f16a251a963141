/**
 * Subscriptions in the Redis catalog (catalog/subscription-record.ts). Keys (P = the catalog's
 * prefix, M = `<project>\0<queue>`):
 *
 * | key           | type | holds                                                                 |
 * |---------------|------|-----------------------------------------------------------------------|
 * | `P sub:<id>`  | HASH | `project`, `queue`, `subscriber`, `ttl`, `expires` (ms), `options` (JSON), `confirmed` (0/1) |
 * | `P subs:M`    | ZSET | the queue's subscription ids, score 0 (lexical order = creation order) |
 * | `P subu:M`    | HASH | subscriber URI → id: the uniqueness index                             |
 * | `P subq`      | ZSET | M of every queue that has had a subscription, score 0 (the notifier's start-up scan) |
 * | `P subv`      | STR  | counter bumped by every create (`CatalogStore.subscriptionsVersion`)  |
 *
 * Every write is one script, so uniqueness holds across every proxy sharing the server. Expired
 * subscriptions are invisible; a create or rename that meets one, and a listing that reads one,
 * removes it.
 */
import type { Redis } from 'ioredis'
import { newId } from '../../shared/ids.js'
import type { QueueRef } from '../../shared/storage/contract.js'
import type {
  CreatedSubscription,
  NewSubscription,
  Subscription,
  SubscriptionPatch,
  SubscriptionUpdate,
} from '../subscription-record.js'

/** Lua helpers: `drop` removes a subscription and its index entries. */
const LIB = `
local function drop(P, M, id)
  local k = P .. 'sub:' .. id
  local u = redis.call('HGET', k, 'subscriber')
  redis.call('DEL', k)
  redis.call('ZREM', P .. 'subs:' .. M, id)
  if redis.call('ZCARD', P .. 'subs:' .. M) == 0 then redis.call('ZREM', P .. 'subq', M) end
  if u and redis.call('HGET', P .. 'subu:' .. M, u) == id then redis.call('HDEL', P .. 'subu:' .. M, u) end
end
local function live(P, id, project, queue, now)
  local f = redis.call('HMGET', P .. 'sub:' .. id, 'project', 'queue', 'expires', 'subscriber', 'confirmed')
  if f[3] and f[1] == project and f[2] == queue and tonumber(f[3]) > now then return f end
  return nil
end
`

/** ARGV: P, M, id, project, queue, subscriber, ttl, expires, options, now → {id, '0'|'1'|'new'}. */
const CREATE = `${LIB}
local P, M, now = ARGV[1], ARGV[2], tonumber(ARGV[10])
local old = redis.call('HGET', P .. 'subu:' .. M, ARGV[6])
if old then
  local f = live(P, old, ARGV[4], ARGV[5], now)
  if f then return { old, f[5] } end
  drop(P, M, old)
end
redis.call('HSET', P .. 'sub:' .. ARGV[3], 'project', ARGV[4], 'queue', ARGV[5], 'subscriber', ARGV[6],
  'ttl', ARGV[7], 'expires', ARGV[8], 'options', ARGV[9], 'confirmed', '0', 'created', ARGV[10])
redis.call('ZADD', P .. 'subs:' .. M, 0, ARGV[3])
redis.call('ZADD', P .. 'subq', 0, M)
redis.call('HSET', P .. 'subu:' .. M, ARGV[6], ARGV[3])
redis.call('INCR', P .. 'subv')
return { ARGV[3], 'new' }
`

/** ARGV: P, M, id, project, queue, now, subscriber|'', ttl|'', expires, options|''. */
const UPDATE = `${LIB}
local P, M, id, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[6])
local f = live(P, id, ARGV[4], ARGV[5], now)
if not f then return 'not_found' end
local k = P .. 'sub:' .. id
local uk = P .. 'subu:' .. M
if ARGV[7] ~= '' and ARGV[7] ~= f[4] then
  local other = redis.call('HGET', uk, ARGV[7])
  if other then
    if live(P, other, ARGV[4], ARGV[5], now) then return 'duplicate' end
    drop(P, M, other)
  end
  if redis.call('HGET', uk, f[4]) == id then redis.call('HDEL', uk, f[4]) end
  redis.call('HSET', uk, ARGV[7], id)
  redis.call('HSET', k, 'subscriber', ARGV[7])
end
if ARGV[8] ~= '' then redis.call('HSET', k, 'ttl', ARGV[8], 'expires', ARGV[9]) end
if ARGV[10] ~= '' then redis.call('HSET', k, 'options', ARGV[10]) end
return 'updated'
`

/** ARGV: P, M, id, project, queue, now, confirmed → 1 | 0. */
const CONFIRM = `${LIB}
if not live(ARGV[1], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])) then return 0 end
redis.call('HSET', ARGV[1] .. 'sub:' .. ARGV[3], 'confirmed', ARGV[7])
return 1
`

/** ARGV: P, M, id, project, queue, cursor. */
const SET_CURSOR = `${LIB}
local f = redis.call('HMGET', ARGV[1] .. 'sub:' .. ARGV[3], 'project', 'queue')
if f[1] == ARGV[4] and f[2] == ARGV[5] then redis.call('HSET', ARGV[1] .. 'sub:' .. ARGV[3], 'cursor', ARGV[6]) end
return 0
`

/** ARGV: P, M, id, project, queue. Drops it when it belongs to the queue (expired or not). */
const DELETE = `${LIB}
local f = redis.call('HMGET', ARGV[1] .. 'sub:' .. ARGV[3], 'project', 'queue')
if f[1] == ARGV[4] and f[2] == ARGV[5] then drop(ARGV[1], ARGV[2], ARGV[3]) return 1 end
redis.call('ZREM', ARGV[1] .. 'subs:' .. ARGV[2], ARGV[3])
return 0
`

interface Scripted extends Redis {
  subCreate(...argv: (string | number)[]): Promise<[string, string]>
  subUpdate(...argv: (string | number)[]): Promise<string>
  subConfirm(...argv: (string | number)[]): Promise<number>
  subDelete(...argv: (string | number)[]): Promise<number>
  subSetCursor(...argv: (string | number)[]): Promise<number>
}

const member = (ref: QueueRef): string => `${ref.project}\u0000${ref.queue}`

function toSubscription(id: string, h: Record<string, string>): Subscription {
  return {
    id,
    project: h.project!,
    queue: h.queue!,
    subscriber: h.subscriber!,
    ttl: Number(h.ttl),
    expires: Number(h.expires),
    options: JSON.parse(h.options ?? '{}') as Record<string, unknown>,
    confirmed: h.confirmed === '1',
    cursor: h.cursor ?? null,
    created: Number(h.created ?? 0),
  }
}

/** The subscription methods of `RedisCatalog`, on its connection; `run` maps connection errors. */
export class RedisSubscriptions {
  readonly #r: Scripted
  readonly #p: string
  readonly #run: <T>(fn: () => Promise<T>) => Promise<T>

  constructor(redis: Redis, prefix: string, run: <T>(fn: () => Promise<T>) => Promise<T>) {
    redis.defineCommand('subCreate', { numberOfKeys: 0, lua: CREATE })
    redis.defineCommand('subUpdate', { numberOfKeys: 0, lua: UPDATE })
    redis.defineCommand('subConfirm', { numberOfKeys: 0, lua: CONFIRM })
    redis.defineCommand('subDelete', { numberOfKeys: 0, lua: DELETE })
    redis.defineCommand('subSetCursor', { numberOfKeys: 0, lua: SET_CURSOR })
    this.#r = redis as Scripted
    this.#p = prefix
    this.#run = run
  }

  async create(s: NewSubscription, now: number): Promise<CreatedSubscription> {
    const id = newId(now)
    const [got, flag] = await this.#run(() =>
      this.#r.subCreate(this.#p, member(s), id, s.project, s.queue, s.subscriber, s.ttl, now + s.ttl * 1000, JSON.stringify(s.options), now),
    )
    return flag === 'new' ? { id: got, created: true, confirmed: false } : { id: got, created: false, confirmed: flag === '1' }
  }

  async version(): Promise<number> {
    return Number((await this.#run(() => this.#r.get(`${this.#p}subv`))) ?? 0)
  }

  async get(ref: QueueRef, id: string, now: number): Promise<Subscription | null> {
    const h = await this.#run(() => this.#r.hgetall(`${this.#p}sub:${id}`))
    if (h.expires === undefined || h.project !== ref.project || h.queue !== ref.queue || Number(h.expires) <= now) return null
    return toSubscription(id, h)
  }

  async list(ref: QueueRef, opts: { limit: number; after?: string | undefined; now: number }): Promise<Subscription[]> {
    const out: Subscription[] = []
    let after = opts.after
    // Each round reads what is still missing; expired entries found are dropped, so a later
    // round (or listing) does not meet them again.
    for (;;) {
      const want = opts.limit - out.length
      const ids = await this.#run(() =>
        this.#r.zrangebylex(`${this.#p}subs:${member(ref)}`, after === undefined ? '-' : `(${after}`, '+', 'LIMIT', 0, want),
      )
      if (ids.length === 0) return out
      const pipe = this.#r.pipeline()
      for (const id of ids) pipe.hgetall(`${this.#p}sub:${id}`)
      const rows = (await this.#run(() => pipe.exec())) ?? []
      for (let i = 0; i < ids.length; i++) {
        const h = rows[i]?.[1] as Record<string, string> | undefined
        const id = ids[i]!
        if (h !== undefined && h.expires !== undefined && Number(h.expires) > opts.now) out.push(toSubscription(id, h))
        else await this.delete(ref, id)
      }
      if (out.length >= opts.limit || ids.length < want) return out
      after = ids[ids.length - 1]
    }
  }

  async update(ref: QueueRef, id: string, patch: SubscriptionPatch, now: number): Promise<SubscriptionUpdate> {
    const r = await this.#run(() =>
      this.#r.subUpdate(
        this.#p,
        member(ref),
        id,
        ref.project,
        ref.queue,
        now,
        patch.subscriber ?? '',
        patch.ttl ?? '',
        patch.ttl === undefined ? 0 : now + patch.ttl * 1000,
        patch.options === undefined ? '' : JSON.stringify(patch.options),
      ),
    )
    return r as SubscriptionUpdate
  }

  async confirm(ref: QueueRef, id: string, confirmed: boolean, now: number): Promise<boolean> {
    return (await this.#run(() => this.#r.subConfirm(this.#p, member(ref), id, ref.project, ref.queue, now, confirmed ? 1 : 0))) === 1
  }

  async delete(ref: QueueRef, id: string): Promise<void> {
    await this.#run(() => this.#r.subDelete(this.#p, member(ref), id, ref.project, ref.queue))
  }

  async setCursor(ref: QueueRef, id: string, cursor: string): Promise<void> {
    await this.#run(() => this.#r.subSetCursor(this.#p, member(ref), id, ref.project, ref.queue, cursor))
  }

  async queues(opts: { limit: number; after?: QueueRef | undefined }): Promise<QueueRef[]> {
    const from = opts.after === undefined ? '-' : `(${member(opts.after)}`
    const members = await this.#run(() => this.#r.zrangebylex(`${this.#p}subq`, from, '+', 'LIMIT', 0, opts.limit))
    return members.map((m) => {
      const at = m.indexOf('\u0000')
      return { project: m.slice(0, at), queue: m.slice(at + 1) }
    })
  }
}
