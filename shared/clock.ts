/** Time is an input: drivers take a clock so tests can move it. Milliseconds since the epoch. */
export type Clock = () => number

export const systemClock: Clock = () => Date.now()

/** A clock tests can set and advance. */
export function manualClock(start = Date.now()): Clock & { advance(ms: number): void; set(ms: number): void } {
  let now = start
  const clock = (() => now) as Clock & { advance(ms: number): void; set(ms: number): void }
  clock.advance = (ms) => {
    now += ms
  }
  clock.set = (ms) => {
    now = ms
  }
  return clock
}
