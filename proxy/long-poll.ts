/**
 * Long polling (docs/api.md, "Long polling"): a claim (`POST …/claims?wait=N`) or a listing
 * (`GET …/messages?wait=N`) that finds nothing is parked here, in the proxy that holds the HTTP
 * response, until a message may be there or `wait` seconds have passed.
 *
 * Nothing polls the store. A parked request costs a small object and a timer, and is woken by:
 * - a post (or a claim release) through this proxy, right after the store answered it
 *   (proxy/api/messages.ts, proxy/api/claims.ts);
 * - on a Redis pool, the pool's pub/sub channel, which the Redis driver publishes to after a
 *   post wherever it runs (proxy/long-poll-redis.ts, shared/storage/posted.ts): posts made
 *   through other proxies. The driver announces only posts to queues a listener has marked
 *   (`DataDriver.listen`): before a request first parks, it marks its queue for the rest of its
 *   wait and tries once more (a post that landed between its first try and the mark was not
 *   announced). Marks are remembered per queue here, so a queue kept waited on is marked again
 *   only when the wait outlasts the mark; a queue deleted or moved to another pool has its mark
 *   dropped and its waiters woken, to mark where it lives now (`placementRemoved`).
 * When woken it tries again; when the wait ends it tries once more (a delayed message that became
 * visible, an expired claim, a notification lost while a subscriber reconnected) and answers with
 * whatever that finds, empty included.
 *
 * A post of n messages wakes at most n parked claims of that queue (each may take them all; one
 * that finds nothing parks again), and every parked listing (listing does not consume). Waiting
 * requests are bounded per project and in all; beyond either bound the request is refused with
 * 429 and `Retry-After`, before any store work.
 */
import { MissiveError } from '../shared/errors.js'
import type { QueueRef } from '../shared/storage/contract.js'
import { routingKey } from './placement-cache.js'

/** A mark lasts at least this long (ms), so waiters that come and go renew it rarely. */
export const MARK_MIN_MS = 30_000
/** Added to each mark (ms): the wait's last try, and the round trip of the mark itself. */
export const MARK_SLACK_MS = 5_000
/** Marks remembered at most; beyond, the lapsed ones are dropped. */
const MARKS_KEPT = 10_000

/** Why a parked request stopped waiting. */
type Wake = 'wake' | 'deadline' | 'abort' | 'closed'

/**
 * Where the transport signals that the client went away: the app's per-request state
 * (proxy/app.ts). `onAbort` is set while a request waits and called from uWS's `onAborted`.
 */
export interface AbortHook {
  aborted: boolean
  onAbort: (() => void) | undefined
}

export interface LongPollLimits {
  /** Requests of one project waiting at once. */
  perProject: number
  /** Requests waiting at once in this proxy. */
  total: number
}

interface Waiter {
  readonly key: string
  readonly project: string
  /** A claim: one message wakes one claim. A listing is woken by every notification. */
  readonly consumes: boolean
  readonly hook: AbortHook | undefined
  /** Woken and not yet retried: a notification that came while the request was at the store. */
  notified: boolean
  /** Set while parked. */
  resolve: ((why: Wake) => void) | undefined
  timer: NodeJS.Timeout | undefined
}

export class LongPoll {
  readonly #limits: LongPollLimits
  /** Registered requests by queue (routing key), in arrival order: first come, first woken. */
  readonly #byQueue = new Map<string, Set<Waiter>>()
  readonly #perProject = new Map<string, number>()
  /**
   * Marks made (`listen`), by queue: covered until `until` (performance.now() ms), in force once
   * `ready` resolved, at `settled` (undefined while the mark is on its way).
   */
  readonly #marks = new Map<string, { until: number; ready: Promise<boolean>; settled: number | undefined }>()
  #total = 0
  #closed = false

  constructor(limits: LongPollLimits) {
    this.#limits = limits
  }

  /** Requests registered (waiting, or retrying after a wake-up). */
  get size(): number {
    return this.#total
  }

  /**
   * Runs `attempt` until `found` says it found something, parking between attempts for at most
   * `seconds` in all, and returns the last result. Throws 429 when the bounds are reached. The
   * request is registered before the first attempt, so a post landing between that attempt and
   * parking is not missed. `listen` marks the queue in its store for `ms` (`DataDriver.listen`):
   * called before the first park unless a mark already covers the wait.
   */
  async run<T>(
    ref: QueueRef,
    opts: { seconds: number; consumes: boolean; hook: AbortHook | undefined; listen?: (ms: number) => Promise<void> },
    attempt: () => Promise<T>,
    found: (result: T) => boolean,
  ): Promise<T> {
    if (opts.seconds <= 0 || this.#closed) return attempt()
    const w = this.#enter(ref, opts.consumes, opts.hook)
    let tried = performance.now()
    const deadline = tried + opts.seconds * 1000
    const listen = opts.listen
    try {
      let result = await attempt()
      // Once per park: a mark covers the wait before it (standing ones cost a lookup). One that
      // took hold after the try began means a post in between was not announced: try once more.
      let markDue = listen !== undefined
      while (!found(result)) {
        if (markDue) {
          markDue = false
          if (await this.#marked(w.key, tried, deadline, listen!)) {
            tried = performance.now()
            result = await attempt()
            continue
          }
        }
        const why = await this.#park(w, deadline)
        if (why === 'abort') return result
        tried = performance.now()
        result = await attempt()
        if (why !== 'wake') return result
        markDue = listen !== undefined
      }
      return result
    } finally {
      this.#leave(w)
    }
  }

  /**
   * Makes sure a mark covers `key` until `deadline`. True when the caller must try again: the
   * mark it relies on took hold after its last try began (at `started`). A mark that fails is
   * forgotten and the caller parks anyway: it is woken by this proxy's own posts, and by its
   * last try at the deadline.
   */
  async #marked(key: string, started: number, deadline: number, listen: (ms: number) => Promise<void>): Promise<boolean> {
    let m = this.#marks.get(key)
    if (m === undefined || m.until < deadline + MARK_SLACK_MS / 2) {
      const now = performance.now()
      const ms = Math.max(deadline - now, MARK_MIN_MS) + MARK_SLACK_MS
      if (this.#marks.size >= MARKS_KEPT) for (const [k, old] of this.#marks) if (old.until < now) this.#marks.delete(k)
      const mark = { until: now + ms, ready: listen(ms).then(() => true, () => false), settled: undefined as number | undefined }
      m = mark
      this.#marks.set(key, mark)
      void mark.ready.then((ok) => {
        mark.settled = performance.now()
        if (!ok && this.#marks.get(key) === mark) this.#marks.delete(key)
      })
    }
    if (m.settled !== undefined && m.settled < started) return false
    await m.ready
    return true
  }

  /**
   * Messages may be available on `ref`: wakes up to `count` parked claims (0: every one) and
   * every parked listing. Costs one comparison when nothing waits anywhere (the hot path).
   */
  notify(ref: QueueRef, count: number): void {
    if (this.#total === 0) return
    const waiters = this.#byQueue.get(routingKey(ref.project, ref.queue))
    if (waiters === undefined) return
    let budget = count === 0 ? Infinity : count
    for (const w of waiters) {
      if (w.notified) continue
      if (w.consumes) {
        if (budget <= 0) continue
        budget--
      }
      w.notified = true
      w.resolve?.('wake')
    }
  }

  /**
   * The queue's placement was removed (deleted, or switched to another pool by a migration;
   * `PoolSet.onRemoval`): its mark was made on a pool that may no longer hold it. The mark is
   * dropped and the requests parked on the queue are woken: each tries again where the queue now
   * lives and, finding nothing, marks that pool before it parks again.
   */
  placementRemoved(ref: QueueRef): void {
    this.#marks.delete(routingKey(ref.project, ref.queue))
    this.notify(ref, 0)
  }

  /** Drops every mark (pools changed): requests mark their queue again before they next park. */
  forgetMarks(): void {
    this.#marks.clear()
  }

  /** Answers every parked request now (each tries once more) and parks no more: the proxy drains. */
  close(): void {
    this.#closed = true
    for (const waiters of this.#byQueue.values()) for (const w of waiters) w.resolve?.('closed')
  }

  #enter(ref: QueueRef, consumes: boolean, hook: AbortHook | undefined): Waiter {
    const n = this.#perProject.get(ref.project) ?? 0
    if (n >= this.#limits.perProject || this.#total >= this.#limits.total) {
      throw new MissiveError(
        'too_many_requests',
        n >= this.#limits.perProject
          ? `No more than ${this.#limits.perProject} requests of a project may wait at once; retry later or without "wait".`
          : 'Too many requests are waiting on this server; retry later or without "wait".',
        { retryAfter: 1 },
      )
    }
    const w: Waiter = { key: routingKey(ref.project, ref.queue), project: ref.project, consumes, hook, notified: false, resolve: undefined, timer: undefined }
    let waiters = this.#byQueue.get(w.key)
    if (waiters === undefined) this.#byQueue.set(w.key, (waiters = new Set()))
    waiters.add(w)
    this.#perProject.set(ref.project, n + 1)
    this.#total++
    return w
  }

  #leave(w: Waiter): void {
    clearTimeout(w.timer)
    if (w.hook !== undefined) w.hook.onAbort = undefined
    const waiters = this.#byQueue.get(w.key)!
    waiters.delete(w)
    if (waiters.size === 0) this.#byQueue.delete(w.key)
    const n = this.#perProject.get(w.project)! - 1
    if (n === 0) this.#perProject.delete(w.project)
    else this.#perProject.set(w.project, n)
    this.#total--
  }

  #park(w: Waiter, deadline: number): Promise<Wake> | Wake {
    if (w.hook?.aborted) return 'abort'
    if (w.notified) {
      w.notified = false
      return 'wake'
    }
    if (this.#closed) return 'closed'
    const left = deadline - performance.now()
    if (left <= 0) return 'deadline'
    return new Promise<Wake>((resolve) => {
      const done = (why: Wake): void => {
        clearTimeout(w.timer)
        w.timer = undefined
        w.resolve = undefined
        if (w.hook !== undefined) w.hook.onAbort = undefined
        w.notified = false
        resolve(why)
      }
      w.resolve = done
      w.timer = setTimeout(done, Math.ceil(left), 'deadline')
      if (w.hook !== undefined) w.hook.onAbort = () => done('abort')
    })
  }
}

/**
 * The `wait` query parameter: whole seconds from 0 (the default: answer at once) to `max`
 * (`longPollMaxWait`). Anything else is a 400.
 */
export function waitSeconds(raw: number, max: number): number {
  if (raw < 0 || raw > max) {
    throw new MissiveError('invalid_parameter', `The "wait" parameter must be at least 0 and may not be greater than ${max}.`)
  }
  return raw
}
