/**
 * Messages on Redis: post and delete (each coalesced per queue), list, get and pop. Each
 * operation is one script call; the coalescer turns concurrent posts to one queue into one call,
 * and concurrent deletes (bulk and single) on one queue into another.
 */
import { isId, newId } from '../../../shared/ids.js'
import {
  LIST_SCAN_BUDGET,
  POST_CHUNK,
  POST_CHUNK_BYTES,
  type ListMessagesOptions,
  type Message,
  type MessageListing,
  type NewMessage,
  type PoppedMessage,
  type PostOptions,
  type QueueRef,
} from '../../../shared/storage/contract.js'
import { ClaimGone, ClaimNotHeld, MessageClaimed, PostTooLarge, QueueFull, StoreUnavailable } from '../../../shared/storage/errors.js'
import { isMarker } from '../../../shared/storage/queue-policy.js'
import { Coalescer, FULL_MESSAGES, type Outcome } from './coalesce.js'
import { bodyBytes, chunksOf } from '../common.js'
import { checkFence, readViews, type Ctx } from './context.js'
import { QueueMoved } from '../../../shared/storage/errors.js'
import { idempotencyKey, queueKeys } from './keys.js'

interface PostRequest {
  ids: string[]
  messages: NewMessage[]
  opts: PostOptions
}

/** One delete request: bulk (`ids`, checked against `claims` when given) or single (`id`). */
type DeleteRequest = { ids: string[]; claims: string[] | undefined } | { id: string; claimId: string | undefined }

/**
 * Delete requests per deleteMessages call. Small batches, not all of a turn's: a consumer loop
 * that claims (coalesced) and then deletes moves in lockstep, and one big delete call left Redis
 * idle while the worker handled the reply (claim 10 + bulk delete, driver bench: 36k msgs/s with
 * one call per turn, 47–60k with batches of 8 against 32–48k uncoalesced, same run).
 */
export const DELETE_BATCH = 8

/**
 * Message ids per deleteMessages call, at most, when it carries several requests: a call's work
 * stays that of one large request (`max_messages_per_page` ids), not eight. A request above it
 * goes alone, as it did before deletes were coalesced.
 */
export const DELETE_IDS = 200

/** How long a post waits for a large post holding its queue before answering 503, ms. */
const BUSY_WAIT_MS = 10_000

/** The idempotency window in ms ('' without a key). */
const windowMs = (opts: PostOptions): string | number =>
  opts.idempotencyKey === undefined ? '' : Math.max(1, Math.round((opts.idempotencyWindow ?? 300) * 1000))

/** A script reply the driver does not know (a script older or newer than this code). */
const unexpected = (status: unknown): Error => new Error(`deleteMessages: unexpected reply ${String(status)}`)

/**
 * What a post request stored: its ids, and whether a listener marked the queue (or the post
 * created it), so the driver announces it (lua/listenQueue.lua).
 */
export interface Posted {
  ids: string[]
  listening: boolean
}

/**
 * Appends messages `from` to `to` as lua/lib.lua `append_messages` reads them: the TTL all of them
 * have ('' for none given, '*' when they differ), their delay likewise, their ids as one text,
 * then per message its TTL and delay (each only when '*') and its body. A request's messages
 * mostly share a TTL and a delay, and every argument costs ioredis a RESP header and Redis a
 * parse, a string object and a Lua string: posts of 10 carried four per message, now one
 * (docs/redis.md, "What a message costs").
 */
function postArgs(args: (string | number)[], ids: string[], messages: NewMessage[], from: number, to: number): void {
  if (to === from) {
    args.push('', '', '')
    return
  }
  const first = messages[from]
  let ttl: number | string = first.ttl ?? ''
  let delay: number | string = first.delay ?? ''
  const width = ids[from].length
  for (let i = from + 1; i < to; i++) {
    const m = messages[i]
    if ((m.ttl ?? '') !== ttl) ttl = '*'
    if ((m.delay ?? '') !== delay) delay = '*'
    // The script cuts the ids apart by length: they are newId's, all of one.
    if (ids[i].length !== width) throw new Error(`postMessages: message ids of different lengths (${width}, ${ids[i].length})`)
  }
  args.push(ttl, delay, ids.slice(from, to).join(''))
  for (let i = from; i < to; i++) {
    const m = messages[i]
    if (ttl === '*') args.push(m.ttl ?? '')
    if (delay === '*') args.push(m.delay ?? '')
    args.push(m.body)
  }
}

/** Valid ids, each once. */
const validIds = (ids: string[]): string[] => [...new Set(ids.filter(isId))]

export class RedisMessages {
  readonly #ctx: Ctx
  readonly #posts: Coalescer<QueueRef, PostRequest, Posted>
  readonly #deletes: Coalescer<QueueRef, DeleteRequest, void>

  constructor(ctx: Ctx, opts: { coalesce: boolean }) {
    this.#ctx = ctx
    this.#posts = new Coalescer((ref, reqs) => this.#post(ref, reqs), {
      maxBatch: opts.coalesce ? 128 : 1,
      weigh: (req) => req.messages.length,
      fullWeight: FULL_MESSAGES,
      together: ctx.scripts.together,
    })
    this.#deletes = new Coalescer((ref, reqs) => this.#delete(ref, reqs), {
      maxBatch: opts.coalesce ? DELETE_BATCH : 1,
      together: ctx.scripts.together,
    })
  }

  postMessages(ref: QueueRef, messages: NewMessage[], opts: PostOptions): Promise<Posted> {
    // Ids are made here, so each caller gets its own whatever batch it lands in.
    const ids = messages.map(() => newId())
    return this.#posts.submit(queueKeys(ref).tag, ref, { ids, messages, opts })
  }

  /**
   * Every post request to `ref` gathered in this turn: small ones packed into script calls of at
   * most POST_CHUNK messages and POST_CHUNK_BYTES of bodies (bounded work per call), each larger
   * one staged in chunks (#postLarge).
   */
  async #post(ref: QueueRef, reqs: PostRequest[]): Promise<Outcome<Posted>[]> {
    // The usual case, one call for the whole batch, without the bookkeeping below.
    let total = 0
    let totalBytes = 0
    for (const req of reqs) {
      total += req.messages.length
      totalBytes += bodyBytes(req.messages)
    }
    if (total <= POST_CHUNK && totalBytes <= POST_CHUNK_BYTES) return this.#postSmall(ref, reqs)
    const out: Outcome<Posted>[] = new Array(reqs.length)
    const runs: Promise<void>[] = []
    let batch: number[] = []
    let msgs = 0
    let bytes = 0
    const flush = (): void => {
      if (batch.length === 0) return
      const idx = batch
      runs.push(
        this.#postSmall(ref, idx.map((i) => reqs[i])).then(
          (res) => idx.forEach((i, n) => (out[i] = res[n])),
          (err: unknown) => idx.forEach((i) => (out[i] = { err })),
        ),
      )
      batch = []
      msgs = bytes = 0
    }
    for (let i = 0; i < reqs.length; i++) {
      const req = reqs[i]
      const size = bodyBytes(req.messages)
      if (req.messages.length > POST_CHUNK || size > POST_CHUNK_BYTES) {
        const chunks = chunksOf(req.messages)
        if (chunks.length > 1) {
          runs.push(this.#postLarge(ref, req, chunks).then((o) => void (out[i] = o), (err: unknown) => void (out[i] = { err })))
          continue
        }
      }
      if (msgs + req.messages.length > POST_CHUNK || bytes + size > POST_CHUNK_BYTES) flush()
      batch.push(i)
      msgs += req.messages.length
      bytes += size
    }
    flush()
    await Promise.all(runs)
    return out
  }

  /** One postMessages script call for `reqs`, waiting while a large post holds the queue. */
  async #postSmall(ref: QueueRef, reqs: PostRequest[]): Promise<Outcome<Posted>[]> {
    const keys = queueKeys(ref)
    let list = keys.listening
    const args: (string | number)[] = [0, reqs.length]
    for (const { ids, messages, opts } of reqs) {
      let ik = 0
      if (opts.idempotencyKey !== undefined) {
        // Copied only when a request has a key: the cached KEYS array is shared.
        if (list === keys.listening) list = [...keys.listening]
        ik = (list as string[]).push(idempotencyKey(keys, opts.idempotencyKey))
      }
      args.push(opts.clientId, opts.defaultTtl, opts.postBytes, opts.queuePolicy ? '1' : '0', messages.length, ik, windowMs(opts), opts.maxMessages ?? 0)
      postArgs(args, ids, messages, 0, messages.length)
    }
    const r = await this.#whileBusy(() => {
      args[0] = this.#ctx.clock()
      return this.#ctx.acked(this.#ctx.scripts.run<(number | string | string[])[]>('postMessages', list, args))
    })
    checkFence(ref, r)
    if (Number(r[0]) === 1) await this.#ctx.catalogue(ref)
    const listening = Number(r[1]) === 1
    return reqs.map((req, n) => {
      const status = r[n + 2]
      if (status === 0 || status === '0') return { ok: { ids: req.ids, listening } }
      if (Array.isArray(status)) return { ok: { ids: String(status[0]).split(','), listening } }
      if (typeof status === 'number' && status < 0) return { err: new QueueFull(ref, -status) }
      return { err: new PostTooLarge(ref, Number(status)) }
    })
  }

  /**
   * A post too large for one bounded call: chunks written invisibly under the queue's stage,
   * made visible by the last one (lua/stageMessages.lua). Starts over, a few times, when the
   * stage was lost to a purge or delete of the queue.
   */
  async #postLarge(ref: QueueRef, req: PostRequest, chunks: [number, number][]): Promise<Outcome<Posted>> {
    const keys = queueKeys(ref)
    const { opts } = req
    const list = opts.idempotencyKey === undefined ? keys.script : [...keys.script, idempotencyKey(keys, opts.idempotencyKey)]
    const head = [opts.clientId, opts.defaultTtl, opts.postBytes, opts.queuePolicy ? '1' : '0', windowMs(opts)]
    // A queue a chunk created is catalogued whatever happens next (as Zaqar, posts create
    // queues lazily, even failed ones).
    let created = false
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const token = newId()
        let lost = false
        for (let c = 0; c < chunks.length && !lost; c++) {
          const [from, to] = chunks[c]
          const op = c === 0 ? 'begin' : c === chunks.length - 1 ? 'commit' : 'add'
          const args: (string | number)[] = [0, op, token, ...head, op === 'commit' ? req.ids.join(',') : '', opts.maxMessages ?? 0, req.messages.length, to - from]
          postArgs(args, req.ids, req.messages, from, to)
          const run = () => {
            args[0] = this.#ctx.clock()
            return this.#ctx.acked(this.#ctx.scripts.run<(string | number)[]>('stageMessages', list, args))
          }
          const r = op === 'begin' ? await this.#whileBusy(run) : await run()
          try {
            checkFence(ref, r)
          } catch (err) {
            if (err instanceof QueueMoved) return { err }
            throw err
          }
          switch (r[0]) {
            case 'OK':
              if (Number(r[1]) === 1) created = true
              break
            case 'DUP':
              return { ok: { ids: String(r[1]).split(','), listening: true } }
            case 'TOOBIG':
              if (Number(r[2]) === 1) created = true
              return { err: new PostTooLarge(ref, Number(r[1])) }
            case 'FULL':
              if (Number(r[2]) === 1) created = true
              return { err: new QueueFull(ref, Number(r[1])) }
            default:
              lost = true
          }
        }
        // Announced whether or not a listener marked the queue: large posts are rare, and the
        // stage script does not read the mark.
        if (!lost) return { ok: { ids: req.ids, listening: true } }
      }
    } finally {
      if (created) await this.#ctx.catalogue(ref)
    }
    return { err: new StoreUnavailable('interrupted', 'postMessages') }
  }

  /** Runs `call` until it is not BUSY (a large post holds the queue), pausing between tries. */
  async #whileBusy<T>(call: () => Promise<T>): Promise<T> {
    const deadline = performance.now() + BUSY_WAIT_MS
    for (let pause = 1; ; pause = Math.min(pause * 2, 50)) {
      const r = await call()
      if (!Array.isArray(r) || r[0] !== 'BUSY') return r
      if (performance.now() > deadline) {
        throw new StoreUnavailable('busy', 'postMessages')
      }
      await new Promise((resolve) => setTimeout(resolve, pause))
    }
  }

  async listMessages(ref: QueueRef, opts: ListMessagesOptions): Promise<MessageListing> {
    const marker = opts.marker
    if (marker !== undefined && !isMarker(marker)) {
      // An unknown marker yields an empty page; the effective include_delayed still comes from the queue.
      const r = await this.#list(ref, opts, '', 0)
      return { items: [], includeDelayed: r.includeDelayed }
    }
    return this.#list(ref, opts, marker ?? '', opts.limit)
  }

  async #list(ref: QueueRef, opts: ListMessagesOptions, after: string, limit: number): Promise<MessageListing> {
    const now = this.#ctx.clock()
    const delayed = opts.includeDelayed === undefined ? '' : opts.includeDelayed ? '1' : '0'
    const r = await this.#ctx.scripts.run<[number, string, ...unknown[]]>('listMessages', queueKeys(ref).script, [
      now,
      after,
      Math.max(0, limit),
      opts.clientId,
      opts.echo ? '1' : '0',
      opts.includeClaimed ? '1' : '0',
      delayed,
      LIST_SCAN_BUDGET,
    ])
    checkFence(ref, r)
    const listing: MessageListing = { items: readViews(r, 2, now), includeDelayed: Number(r[0]) === 1 }
    if (r[1] !== '') listing.next = String(r[1])
    return listing
  }

  async getMessage(ref: QueueRef, id: string): Promise<Message | null> {
    if (!isId(id)) return null
    return (await this.#get(ref, [id]))[0] ?? null
  }

  async getMessages(ref: QueueRef, ids: string[]): Promise<Message[]> {
    const valid = validIds(ids)
    return valid.length === 0 ? [] : this.#get(ref, valid)
  }

  async #get(ref: QueueRef, ids: string[]): Promise<Message[]> {
    const now = this.#ctx.clock()
    const r = await this.#ctx.scripts.run<unknown[]>('getMessages', queueKeys(ref).script, [now, ...ids])
    checkFence(ref, r)
    return readViews(r, 0, now)
  }

  deleteMessage(ref: QueueRef, id: string, claimId?: string): Promise<void> {
    if (!isId(id)) return Promise.resolve()
    return this.#deletes.submit(queueKeys(ref).tag, ref, { id, claimId })
  }

  deleteMessages(ref: QueueRef, ids: string[], claimIds?: string[]): Promise<void> {
    const valid = validIds(ids)
    if (valid.length === 0) return Promise.resolve()
    return this.#deletes.submit(queueKeys(ref).tag, ref, { ids: valid, claims: claimIds })
  }

  /**
   * Every delete on `ref` gathered in this turn, in one deleteMessages script call: each request
   * is checked and applied on its own, in order (lua/deleteMessages.lua), so each gets the answer
   * it would have got alone; the records and index entries of all of them go in one pass (a
   * profile of claim 10 + bulk delete had one script call per delete request, ~8 µs of Redis
   * each before any work, and one ioredis write each).
   */
  async #delete(ref: QueueRef, reqs: DeleteRequest[]): Promise<Outcome<void>[]> {
    let ids = 0
    for (const req of reqs) ids += 'id' in req ? 1 : req.ids.length
    if (reqs.length === 1 || ids <= DELETE_IDS) return this.#deleteCall(ref, reqs)
    // Calls of at most DELETE_IDS ids, issued in order on the one connection: Redis runs them in
    // that order, so each request still sees what the ones before it deleted.
    const groups: DeleteRequest[][] = []
    let group: DeleteRequest[] = []
    let n = 0
    for (const req of reqs) {
      const size = 'id' in req ? 1 : req.ids.length
      if (group.length > 0 && n + size > DELETE_IDS) {
        groups.push(group)
        group = []
        n = 0
      }
      group.push(req)
      n += size
    }
    groups.push(group)
    // A call that fails fails its own requests only: the others' deletes stand.
    const results = await Promise.all(groups.map((g) => this.#deleteCall(ref, g).catch((err: unknown) => g.map((): Outcome<void> => ({ err })))))
    return results.flat()
  }

  /** One deleteMessages script call for `reqs`. */
  async #deleteCall(ref: QueueRef, reqs: DeleteRequest[]): Promise<Outcome<void>[]> {
    const args: (string | number)[] = [this.#ctx.clock(), reqs.length]
    for (const req of reqs) {
      if ('id' in req) args.push('s', req.id, req.claimId ?? '', req.claimId === undefined ? '0' : '1')
      else {
        const claims = req.claims ?? []
        args.push('b', req.claims === undefined ? '0' : '1', claims.length, req.ids.length)
        for (const c of claims) args.push(c)
        for (const id of req.ids) args.push(id)
      }
    }
    const r = await this.#ctx.acked(this.#ctx.scripts.run<string[]>('deleteMessages', queueKeys(ref).script, args))
    checkFence(ref, r)
    // The verdicts are the script's (queue-policy.ts, `deleteVerdict`): it must see the message
    // and its claim atomically with the delete.
    return reqs.map((req, n): Outcome<void> => {
      const status = r[n]
      if (status === 'OK') return { ok: undefined }
      if (!('id' in req)) return { err: status === 'CLAIMED' ? new MessageClaimed(ref) : unexpected(status) }
      switch (status) {
        case 'CLAIMED':
          return { err: new MessageClaimed(ref, req.id) }
        case 'NOT_CLAIMED':
          return { err: new ClaimNotHeld(ref, req.id, req.claimId!) }
        case 'CLAIM_GONE':
          return { err: new ClaimGone(ref, req.id, req.claimId!) }
        default:
          return { err: unexpected(status) }
      }
    })
  }

  async popMessages(ref: QueueRef, limit: number): Promise<PoppedMessage[]> {
    if (limit <= 0) return []
    const now = this.#ctx.clock()
    const r = await this.#ctx.acked(this.#ctx.scripts.run<unknown[]>('popMessages', queueKeys(ref).script, [now, limit, newId()]))
    checkFence(ref, r)
    return readViews(r, 0, now).map(({ id, ttl, age, body, claimId, claimCount }) => ({ id, ttl, age, body, claimId: claimId ?? '', claimCount }))
  }
}
