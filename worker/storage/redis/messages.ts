/**
 * Messages on Redis: post (coalesced per queue), list, get, delete and pop. Each operation is
 * one script call; the coalescer turns concurrent posts to one queue into one call.
 */
import { MissiveError } from '../../../shared/errors.js'
import { isId, newId } from '../../../shared/ids.js'
import {
  DELETE_ERRORS,
  LIST_SCAN_BUDGET,
  type ListMessagesOptions,
  type Message,
  type MessageListing,
  type NewMessage,
  type PoppedMessage,
  type PostOptions,
  type QueueRef,
} from '../contract.js'
import { Coalescer, type Outcome } from './coalesce.js'
import { ageOf, toMessage, type Ctx, type MessageTuple } from './context.js'
import { queueKeys } from './keys.js'

/** Markers are the decimal `seq` of the last message of a page. */
const MARKER_RE = /^(0|[1-9][0-9]{0,15})$/

interface PostRequest {
  ids: string[]
  messages: NewMessage[]
  opts: PostOptions
}

/** Valid ids, each once. */
const validIds = (ids: string[]): string[] => [...new Set(ids.filter(isId))]

const DELETE_FAILURES: Record<string, () => MissiveError> = {
  CLAIMED: () => new MissiveError('message_claimed', DELETE_ERRORS.claimed),
  NOT_CLAIMED: () => new MissiveError('claim_invalid', DELETE_ERRORS.notClaimed),
  CLAIM_GONE: () => new MissiveError('claim_invalid', DELETE_ERRORS.claimGone),
}

export class RedisMessages {
  readonly #ctx: Ctx
  readonly #posts: Coalescer<QueueRef, PostRequest, string[]>

  constructor(ctx: Ctx, opts: { coalesce: boolean }) {
    this.#ctx = ctx
    this.#posts = new Coalescer((ref, reqs) => this.#post(ref, reqs), opts.coalesce ? 128 : 1)
  }

  postMessages(ref: QueueRef, messages: NewMessage[], opts: PostOptions): Promise<string[]> {
    // Ids are made here, so each caller gets its own whatever batch it lands in.
    const ids = messages.map(() => newId())
    return this.#posts.submit(queueKeys(ref).tag, ref, { ids, messages, opts })
  }

  /** One script call for every post request to `ref` gathered in this turn. */
  async #post(ref: QueueRef, reqs: PostRequest[]): Promise<Outcome<string[]>[]> {
    const args: (string | number)[] = [this.#ctx.clock(), reqs.length]
    for (const { ids, messages, opts } of reqs) {
      args.push(opts.clientId, opts.defaultTtl, opts.requestBytes, opts.useQueueLimits ? '1' : '0', messages.length)
      messages.forEach((m, i) => args.push(ids[i], m.ttl ?? '', m.delay ?? '', m.body))
    }
    const r = await this.#ctx.acked(this.#ctx.scripts.run<(number | string)[]>('postMessages', queueKeys(ref).list, args))
    if (Number(r[0]) === 1) await this.#ctx.catalogue(ref)
    return reqs.map((req, n) => {
      const status = r[n + 1]
      if (status === 0 || status === '0') return { ok: req.ids }
      return { err: new MissiveError('bad_request', `Message collection size is too large. Max size ${status}`) }
    })
  }

  async listMessages(ref: QueueRef, opts: ListMessagesOptions): Promise<MessageListing> {
    const marker = opts.marker
    if (marker !== undefined && !MARKER_RE.test(marker)) {
      // An unknown marker yields an empty page; the effective include_delayed still comes from the queue.
      const r = await this.#list(ref, opts, '', 0)
      return { items: [], includeDelayed: r.includeDelayed }
    }
    return this.#list(ref, opts, marker ?? '', opts.limit)
  }

  async #list(ref: QueueRef, opts: ListMessagesOptions, after: string, limit: number): Promise<MessageListing> {
    const now = this.#ctx.clock()
    const delayed = opts.includeDelayed === undefined ? '' : opts.includeDelayed ? '1' : '0'
    const r = await this.#ctx.scripts.run<[number, string, ...MessageTuple[]]>('listMessages', queueKeys(ref).list, [
      now,
      after,
      Math.max(0, limit),
      opts.clientId,
      opts.echo ? '1' : '0',
      opts.includeClaimed ? '1' : '0',
      delayed,
      LIST_SCAN_BUDGET,
    ])
    const tuples = r.slice(2) as MessageTuple[]
    const listing: MessageListing = { items: tuples.map((t) => toMessage(t, now)), includeDelayed: Number(r[0]) === 1 }
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
    const r = await this.#ctx.scripts.run<MessageTuple[]>('getMessages', queueKeys(ref).list, [now, ...ids])
    return r.map((t) => toMessage(t, now))
  }

  async deleteMessage(ref: QueueRef, id: string, claimId?: string): Promise<void> {
    if (!isId(id)) return
    const r = await this.#ctx.acked(
      this.#ctx.scripts.run<string>('deleteMessage', queueKeys(ref).list, [
        this.#ctx.clock(),
        id,
        claimId ?? '',
        claimId === undefined ? '0' : '1',
      ]),
    )
    const fail = DELETE_FAILURES[r]
    if (fail !== undefined) throw fail()
  }

  async deleteMessages(ref: QueueRef, ids: string[], claimIds?: string[]): Promise<void> {
    const valid = validIds(ids)
    if (valid.length === 0) return
    const claims = claimIds ?? []
    const r = await this.#ctx.acked(
      this.#ctx.scripts.run<string>('deleteMessages', queueKeys(ref).list, [
        this.#ctx.clock(),
        claims.length,
        claimIds === undefined ? '0' : '1',
        ...claims,
        ...valid,
      ]),
    )
    if (r === 'CLAIMED') throw new MissiveError('message_claimed', DELETE_ERRORS.claimed)
  }

  async popMessages(ref: QueueRef, limit: number): Promise<PoppedMessage[]> {
    if (limit <= 0) return []
    const now = this.#ctx.clock()
    const r = await this.#ctx.acked(this.#ctx.scripts.run<MessageTuple[]>('popMessages', queueKeys(ref).list, [now, limit, newId()]))
    return r.map((t) => ({ id: t[0], ttl: Number(t[2]), age: ageOf(Number(t[3]), now), body: t[1], claimId: t[4], claimCount: Number(t[5]) }))
  }
}
