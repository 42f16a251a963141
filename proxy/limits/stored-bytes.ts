/**
 * Stored bytes per project, for the quota `bytesPerProject` (docs/limits.md, "Stored bytes per
 * project"): enforced eventually, with a bounded overshoot, rather than counted on every path.
 *
 * No store keeps a byte count per project: every path that removes a message (delete, pop,
 * expiry, purge, dead-lettering, migration) would have to keep it, and on a Redis Cluster pool a
 * project's queues live in different slots, which no script can update together. Instead the
 * background backlog scan (proxy/backlog.ts) asks each queue's store what it holds
 * (`DataDriver.storedBytes`) and sums it per project; this proxy adds what it accepted for the
 * project since that pass began, and refuses a post once the sum reaches the quota.
 *
 * What is missed: bytes other proxies accept during one pass (a pass reads each queue once; a
 * post to a queue already read is seen on the next pass). This proxy's own posts are counted
 * from the moment they are accepted, in flight or not.
 */

/** The per-project sums of the last complete pass and this proxy's posts since it began. */
export class StoredBytes {
  /** Bytes per project as of the last complete pass (projects with no bytes are absent). */
  #scanned = new Map<string, number>()
  /** Bytes this proxy accepted since the last complete pass began (checked with `#scanned`). */
  #sincePublished = new Map<string, number>()
  /** Bytes this proxy accepted since the pass under way began (undefined: none under way). */
  #sinceStarted: Map<string, number> | undefined
  #startedAt = 0
  /**
   * Some project has a byte quota in force (seen by the limiter): the scan reads stored bytes
   * only then, so that quotas without one cost the scan nothing more.
   */
  wanted = false
  /** When the last complete pass began and ended (Date.now(); 0: none yet). */
  passStartedAt = 0
  passEndedAt = 0

  /** The scan begins a pass: posts accepted from now on may be missed by it. */
  passStarted(): void {
    this.#sinceStarted = new Map()
    this.#startedAt = Date.now()
  }

  /**
   * The scan completed a pass that found `bytes` per project: they replace the last ones
   * (projects the pass did not see are dropped), and only posts accepted since it began are
   * still to add.
   */
  passEnded(bytes: Map<string, number>): void {
    this.#scanned = bytes
    this.#sincePublished = this.#sinceStarted ?? new Map()
    this.#sinceStarted = undefined
    this.passStartedAt = this.#startedAt
    this.passEndedAt = Date.now()
  }

  /** The scan gave up on a pass (a catalog error): keep counting posts against the last one. */
  passAbandoned(): void {
    this.#sinceStarted = undefined
  }

  /** What the project holds as far as this proxy knows: the last pass's sum + posts accepted since it began. */
  of(project: string): number {
    return (this.#scanned.get(project) ?? 0) + (this.#sincePublished.get(project) ?? 0)
  }

  /** The last pass's sum for the project (without this proxy's posts since). */
  scanned(project: string): number {
    return this.#scanned.get(project) ?? 0
  }

  /** This proxy accepted a post of `bytes` for the project. */
  accepted(project: string, bytes: number): void {
    this.#sincePublished.set(project, (this.#sincePublished.get(project) ?? 0) + bytes)
    if (this.#sinceStarted !== undefined) this.#sinceStarted.set(project, (this.#sinceStarted.get(project) ?? 0) + bytes)
  }
}
