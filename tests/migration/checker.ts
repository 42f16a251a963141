/**
 * The invariant checker of the live-migration tests (issue 13; docs/migration.md, "Guarantees"):
 * a record of what clients were told while a queue moved — every acknowledged post, every claim's
 * messages, every acknowledged delete, what the queue held at the end — and the checks that
 * history must pass:
 * - **zero lost**: every acknowledged post (201) was delivered by a claim or is still in the queue;
 * - **zero duplicates**: no message is delivered by two claims unless the first claim had expired
 *   when the second was made (the tests use claim TTLs longer than the test, so any is a bug);
 * - **zero resurrected**: no message whose delete was acknowledged (204) is delivered by a claim
 *   made after that, or found in the queue at the end;
 * - **no phantoms**: every message delivered or found was posted (acknowledged, or a post whose
 *   answer was lost: those may or may not exist);
 * - **FIFO per producer**: each producer posts one message at a time, numbered; each consumer
 *   claims one claim at a time, so the messages of one producer reach one consumer in posting
 *   order (a claim takes the oldest unclaimed messages, and nothing is ever unclaimed in these
 *   tests), and the queue lists them in posting order at the end.
 *
 * Times are `performance.now()` readings taken by the recording client: a claim "made after" a
 * delete is one whose request started after the delete's answer arrived.
 */

/** A message body the producers post: who posted it, and its number in that producer's sequence. */
export interface Stamp {
  p: number
  s: number
}

/** One delivered message as a claim returned it. */
export interface Delivery {
  id: string
  body: Stamp
  claimId: string
  consumer: number
  /** When the claim request started and when its answer arrived (ms, performance.now). */
  start: number
  end: number
  /** The claim's TTL, seconds. */
  ttl: number
}

export interface Violations {
  lost: string[]
  duplicates: string[]
  resurrected: string[]
  phantoms: string[]
  fifo: string[]
}

export interface Verdict {
  violations: Violations
  /** Counts, for the test's comment. */
  posted: number
  uncertain: number
  delivered: number
  deleted: number
  remaining: number
}

export class History {
  /** Acknowledged posts: id → stamp. */
  readonly posted = new Map<string, Stamp>()
  /** Posts whose answer was lost or an error: they may exist ("p:s"). */
  readonly uncertain = new Set<string>()
  readonly deliveries: Delivery[] = []
  /** Acknowledged deletes: id → when the answer arrived. */
  readonly deleted = new Map<string, number>()
  /** The queue's messages at the end, in listing order (id and body). */
  final: { id: string; body: Stamp }[] | undefined

  post(stamp: Stamp, id: string): void {
    this.posted.set(id, stamp)
  }

  postUncertain(stamp: Stamp): void {
    this.uncertain.add(`${stamp.p}:${stamp.s}`)
  }

  deliver(d: Delivery): void {
    this.deliveries.push(d)
  }

  deleteAcked(id: string, at: number): void {
    if (!this.deleted.has(id)) this.deleted.set(id, at)
  }

  finish(messages: { id: string; body: Stamp }[]): void {
    this.final = messages
  }

  check(): Verdict {
    const v: Violations = { lost: [], duplicates: [], resurrected: [], phantoms: [], fifo: [] }
    const final = this.final ?? []
    const known = (id: string, body: Stamp): boolean => {
      const s = this.posted.get(id)
      if (s !== undefined) return s.p === body.p && s.s === body.s
      return this.uncertain.has(`${body.p}:${body.s}`)
    }

    // Phantoms and duplicates.
    const byId = new Map<string, Delivery[]>()
    for (const d of this.deliveries) {
      if (!known(d.id, d.body)) v.phantoms.push(`${d.id} (${d.body.p}:${d.body.s}) delivered by claim ${d.claimId}`)
      const list = byId.get(d.id)
      if (list === undefined) byId.set(d.id, [d])
      else {
        const first = list[0]!
        // Allowed only when the first claim was surely expired when the second was made.
        if (d.start < first.end + first.ttl * 1000) v.duplicates.push(`${d.id} delivered by claims ${first.claimId} and ${d.claimId}`)
        list.push(d)
      }
    }
    for (const m of final) if (!known(m.id, m.body)) v.phantoms.push(`${m.id} (${m.body.p}:${m.body.s}) in the queue at the end`)

    // Lost.
    const present = new Set(final.map((m) => m.id))
    for (const id of this.posted.keys()) if (!byId.has(id) && !present.has(id)) v.lost.push(id)

    // Resurrected.
    for (const [id, at] of this.deleted) {
      if (present.has(id)) v.resurrected.push(`${id} deleted, then in the queue at the end`)
      for (const d of byId.get(id) ?? []) if (d.start > at) v.resurrected.push(`${id} deleted, then delivered by claim ${d.claimId}`)
    }

    // FIFO: per consumer (claims in the order made), and in the final listing.
    const byConsumer = new Map<number, Delivery[]>()
    for (const d of this.deliveries) {
      const list = byConsumer.get(d.consumer)
      if (list === undefined) byConsumer.set(d.consumer, [d])
      else list.push(d)
    }
    for (const [consumer, list] of byConsumer) {
      // Deliveries of one claim are pushed in the claim's order; claims of one consumer in turn.
      const sorted = [...list].sort((a, b) => a.start - b.start)
      fifo(
        sorted.map((d) => d.body),
        `consumer ${consumer}`,
        v.fifo,
      )
    }
    fifo(
      final.map((m) => m.body),
      'the final listing',
      v.fifo,
    )

    return {
      violations: v,
      posted: this.posted.size,
      uncertain: this.uncertain.size,
      delivered: byId.size,
      deleted: this.deleted.size,
      remaining: final.length,
    }
  }
}

/** Appends to `out` every place where a producer's numbers go down in `stamps`. */
function fifo(stamps: Stamp[], where: string, out: string[]): void {
  const last = new Map<number, number>()
  for (const s of stamps) {
    const prev = last.get(s.p)
    if (prev !== undefined && s.s <= prev) out.push(`${where}: producer ${s.p} message ${s.s} after ${prev}`)
    last.set(s.p, s.s)
  }
}

/** Violations as one line each (empty: none), for a failing assertion's message. */
export function describe(v: Violations, max = 10): string[] {
  const lines: string[] = []
  for (const [kind, list] of Object.entries(v) as [keyof Violations, string[]][]) {
    if (list.length === 0) continue
    lines.push(`${kind}: ${list.length}`, ...list.slice(0, max).map((l) => `  ${l}`))
  }
  return lines
}
