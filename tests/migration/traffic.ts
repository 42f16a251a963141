/**
 * Client traffic on one queue for the live-migration tests, recorded into a `History`
 * (tests/migration/checker.ts): producers that post one numbered message at a time (recording
 * the id of every 201), consumers that claim and delete (recording every delivered message and
 * every acknowledged delete), and the final look at the queue. Every request's status is counted,
 * and anything but a success or a proper 503 (JSON title and description, Retry-After) is kept
 * as a problem: during a migration clients may meet a short pause, nothing else.
 */
import { bad503, idFromHref, type HttpResp, type ZaqarClient } from '../helpers/http.js'
import type { Teardown } from '../helpers/index.js'
import { History, type Stamp } from './checker.js'

export interface TrafficOptions {
  producers: number
  consumers: number
  /** Messages per claim. */
  claimLimit: number
  /** Claim TTL, seconds: longer than the test, so any duplicate delivery is a bug. */
  claimTtl: number
  /** Pause between two posts of one producer, ms (pacing, not synchronisation). */
  postGapMs: number
  /** Pause after a claim that found nothing, ms. */
  idleGapMs: number
}

export const DEFAULT_TRAFFIC: TrafficOptions = { producers: 3, consumers: 2, claimLimit: 5, claimTtl: 600, postGapMs: 5, idleGapMs: 10 }

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** A message as a claim or a listing returns it. */
interface WireMessage {
  href: string
  body: Stamp
}

export class Traffic {
  readonly history: History
  /** Status → count, over every request made. */
  readonly statuses = new Map<number, number>()
  /** Requests answered with anything but success or a proper 503, and client-side failures. */
  readonly problems: string[] = []
  /** Next number of each producer (also: how many posts each made). */
  readonly next: number[]
  #running = false
  #loops: Promise<void>[] = []

  constructor(
    /** One client per loop is picked round-robin from these (several proxies: a stale one too). */
    readonly clients: readonly ZaqarClient[],
    readonly queue: string,
    readonly opts: TrafficOptions = DEFAULT_TRAFFIC,
    history?: History,
  ) {
    this.history = history ?? new History()
    this.next = new Array<number>(opts.producers).fill(0)
  }

  get posted(): number {
    return this.history.posted.size
  }

  get delivered(): number {
    return this.history.deliveries.length
  }

  /** Starts the loops; `t`'s teardown stops them (a failed test must not leave them running). */
  start(t: Teardown): void {
    t.teardown(() => this.stop())
    this.#running = true
    for (let p = 0; p < this.opts.producers; p++) this.#loops.push(this.#producer(p, this.clients[p % this.clients.length]!))
    for (let c = 0; c < this.opts.consumers; c++) this.#loops.push(this.#consumer(c, this.clients[c % this.clients.length]!))
  }

  /** Stops every loop after its current request. */
  async stop(): Promise<void> {
    this.#running = false
    await Promise.all(this.#loops)
    this.#loops = []
  }

  /** One request, counted; a client-side failure (timeout, reset) resolves to undefined. */
  async #req(client: ZaqarClient, what: string, method: string, path: string, body?: unknown): Promise<HttpResp | undefined> {
    let r: HttpResp
    try {
      r = await client.req(method, path, body === undefined ? {} : { body })
    } catch (err) {
      this.problems.push(`${what}: ${(err as Error).name}: ${(err as Error).message}`)
      return undefined
    }
    this.statuses.set(r.status, (this.statuses.get(r.status) ?? 0) + 1)
    if (r.status >= 500) {
      const bad = bad503(r)
      if (bad !== null) this.problems.push(`${what}: ${bad}: ${r.text.slice(0, 200)}`)
    } else if (r.status >= 300 && r.status !== 404) this.problems.push(`${what}: ${r.status} ${r.text.slice(0, 200)}`)
    return r
  }

  async #producer(p: number, client: ZaqarClient): Promise<void> {
    const path = `/v2/queues/${this.queue}/messages`
    while (this.#running) {
      const stamp: Stamp = { p, s: this.next[p]!++ }
      await this.postOne(client, stamp, path)
      await sleep(this.opts.postGapMs)
    }
  }

  /** Posts one stamped message and records the outcome (also used to fill the queue first). */
  async postOne(client: ZaqarClient, stamp: Stamp, path = `/v2/queues/${this.queue}/messages`): Promise<boolean> {
    const r = await this.#req(client, `post ${stamp.p}:${stamp.s}`, 'POST', path, { messages: [{ body: stamp, ttl: 3600 }] })
    if (r?.status === 201) {
      this.history.post(stamp, idFromHref(r.json.resources[0]))
      return true
    }
    // A 503 stored nothing (a fence refuses atomically; a worker error fails before the answer),
    // but a lost answer may have: either way the checker accepts the message if it turns up.
    this.history.postUncertain(stamp)
    return false
  }

  /** Posts `stamps` in one request (their order is their FIFO order); false when not acknowledged. */
  async postBatch(client: ZaqarClient, stamps: Stamp[]): Promise<boolean> {
    const r = await this.#req(client, `post batch of ${stamps.length}`, 'POST', `/v2/queues/${this.queue}/messages`, {
      messages: stamps.map((body) => ({ body, ttl: 3600 })),
    })
    if (r?.status === 201) {
      ;(r.json.resources as string[]).forEach((href, i) => this.history.post(stamps[i]!, idFromHref(href)))
      return true
    }
    for (const s of stamps) this.history.postUncertain(s)
    return false
  }

  async #consumer(c: number, client: ZaqarClient): Promise<void> {
    while (this.#running) {
      const n = await this.claimAndDelete(client, c)
      if (n === 0) await sleep(this.opts.idleGapMs)
    }
  }

  /**
   * One claim; every message it delivers is recorded, then deleted with the claim id (each 204
   * recorded). `keep`: leave the messages claimed (the caller deletes them later) and return the
   * claim. Returns how many messages the claim delivered.
   */
  async claimAndDelete(client: ZaqarClient, consumer: number, keep?: { claimId?: string; hrefs?: string[] }, limit = this.opts.claimLimit): Promise<number> {
    const start = performance.now()
    const r = await this.#req(client, `claim by ${consumer}`, 'POST', `/v2/queues/${this.queue}/claims?limit=${limit}`, {
      ttl: this.opts.claimTtl,
      grace: 60,
    })
    const end = performance.now()
    if (r?.status !== 201) return 0
    const claimId = String(r.headers.get('location') ?? '').split('/').pop()!
    const messages = r.json.messages as WireMessage[]
    for (const m of messages) {
      this.history.deliver({ id: idFromHref(m.href), body: m.body, claimId, consumer, start, end, ttl: this.opts.claimTtl })
    }
    if (keep !== undefined) {
      keep.claimId = claimId
      keep.hrefs = messages.map((m) => m.href)
      return messages.length
    }
    if (limit === this.opts.claimLimit) for (const m of messages) await this.deleteHref(client, m.href)
    else if (messages.length > 0) {
      // A drain: one bulk delete of the claim's messages (by ids and claim ids).
      const ids = messages.map((m) => idFromHref(m.href))
      const d = await this.#req(client, `bulk delete by ${consumer}`, 'DELETE', `/v2/queues/${this.queue}/messages?ids=${ids.join(',')}&claim_ids=${ids.map(() => claimId).join(',')}`)
      if (d?.status === 204) for (const id of ids) this.history.deleteAcked(id, performance.now())
    }
    return messages.length
  }

  /** Deletes a message by the href its claim gave (it names the claim); records a 204. */
  async deleteHref(client: ZaqarClient, href: string): Promise<HttpResp | undefined> {
    const r = await this.#req(client, `delete ${href}`, 'DELETE', href)
    if (r?.status === 204) this.history.deleteAcked(idFromHref(href), performance.now())
    return r
  }

  /** Every message the queue holds (claimed ones too), in listing order: the history's end state. */
  async listAll(client: ZaqarClient): Promise<{ id: string; body: Stamp }[]> {
    const out: { id: string; body: Stamp }[] = []
    let path = `/v2/queues/${this.queue}/messages?limit=20&echo=true&include_claimed=true`
    for (;;) {
      const r = await client.req('GET', path)
      if (r.status === 204) return out
      if (r.status !== 200) throw new Error(`listing ${path}: ${r.status} ${r.text}`)
      const page = r.json.messages as WireMessage[]
      if (page.length === 0) return out
      for (const m of page) out.push({ id: idFromHref(m.href), body: m.body })
      const next = (r.json.links as { rel: string; href: string }[]).find((l) => l.rel === 'next')
      if (next === undefined) return out
      path = next.href
    }
  }
}
