/**
 * A task run one call at a time, where a call made while it runs makes it run once more after
 * the current round: the round in progress may have read state from before that call. Every
 * caller gets the promise of the rounds that cover its call.
 */
export class Rerunning {
  #running: Promise<void> | undefined
  #again = false

  /** `fn` is one round; `more()` false stops the reruns (a stopped runner, say). */
  constructor(
    readonly fn: () => Promise<void>,
    readonly more: () => boolean = () => true,
  ) {}

  run(): Promise<void> {
    if (this.#running !== undefined) {
      this.#again = true
      return this.#running
    }
    this.#running = (async () => {
      try {
        do {
          this.#again = false
          await this.fn()
        } while (this.#again && this.more())
      } finally {
        this.#running = undefined
      }
    })()
    return this.#running
  }
}
