/**
 * Runs the anchor's suite (Zaqar's, perf/bench.ts) in step with a Missive store's: each scenario
 * compared with Zaqar runs on Zaqar right after it ran on Missive, so a ratio compares two windows
 * seconds apart. Run one suite after the other and the windows are minutes apart, on shared
 * machines whose speed drifts by tens of percent within minutes (measured: the same build's post
 * 10 made 49.9k and then 69.0k msgs/s two minutes later), and the drift lands in the ratio.
 *
 * The anchor side calls `turn(id)` before a scenario (its prefill included) and `done(id)` after
 * it; the leading side calls `pair(id)` after its own run of `id`, which lets the anchor run `id`
 * and resolves when it is done. Either side may stop early: `finish()` (the leader is through: the
 * anchor runs what is left unpaired) and `close()` (the anchor is through: pairing is a no-op).
 * Nothing waits on a side that has stopped, so neither suite can hang on the other.
 */
export class Pacer {
  /** The anchor is waiting for this scenario's turn. */
  #waiting: { id: string; go: () => void } | null = null
  /** Turns given before the anchor asked for them. */
  #granted = new Set<string>()
  /** The leader is waiting for the anchor to finish this scenario. */
  #pairing: { id: string; done: () => void } | null = null
  #finished = false
  #closed = false
  #readyResolve!: () => void
  /** Resolves once the anchor is up and waiting for its first turn (or has stopped). */
  readonly ready: Promise<void> = new Promise<void>((r) => {
    this.#readyResolve = r
  })

  /** Anchor: waits until the leader has run `id` (at once after `finish()`). */
  turn(id: string): Promise<void> {
    this.#readyResolve()
    if (this.#finished || this.#granted.delete(id)) return Promise.resolve()
    return new Promise<void>((go) => {
      this.#waiting = { id, go }
    })
  }

  /** Anchor: `id` is done; the leader carries on. */
  done(id: string): void {
    const p = this.#pairing
    if (p !== null && p.id === id) {
      this.#pairing = null
      p.done()
    }
  }

  /** Leader: it has run `id`; resolves when the anchor has run it too (at once if it stopped). */
  pair(id: string): Promise<void> {
    if (this.#closed || this.#finished) return Promise.resolve()
    const w = this.#waiting
    // The anchor waits for another scenario: it does not run this one (yet); no pairing.
    if (w !== null && w.id !== id) {
      this.#granted.add(id)
      return Promise.resolve()
    }
    return new Promise<void>((done) => {
      this.#pairing = { id, done }
      if (w !== null) {
        this.#waiting = null
        w.go()
      } else {
        // Between two of its scenarios: the turn is kept for it, and taken when it asks.
        this.#granted.add(id)
      }
    })
  }

  /** Leader: no more pairs; the anchor runs the rest on its own. */
  finish(): void {
    this.#finished = true
    this.#granted.clear()
    const w = this.#waiting
    this.#waiting = null
    w?.go()
  }

  /** Anchor: stopped (done, or failed); nobody waits for it any more. */
  close(): void {
    this.#closed = true
    this.#readyResolve()
    const p = this.#pairing
    this.#pairing = null
    p?.done()
  }
}
