/**
 * Which worker of a pool serves a queue: rendezvous (highest random weight) hashing over the
 * worker indexes, so every operation on one queue meets in one process (where the store's
 * per-queue work can be coalesced), and adding or removing a worker moves only the queues it
 * wins or held.
 */

/** 32-bit FNV-1a of `s`, continuing from `seed`. */
function fnv1a(s: string, seed = 0x811c9dc5): number {
  let h = seed
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/** `fnv1a(String(i))` per worker index, computed once: the hot path allocates no strings. */
const seeds: number[] = []

function seedOf(i: number): number {
  while (seeds.length <= i) seeds.push(fnv1a(String(seeds.length)))
  return seeds[i]!
}

/**
 * The worker that serves `key` (a queue's routing key) among `workers` (index i = worker i);
 * undefined when there is none. Same answer for the same key and worker count, in every proxy.
 */
export function workerFor<T>(workers: readonly T[] | undefined, key: string): T | undefined {
  if (workers === undefined || workers.length <= 1) return workers?.[0]
  let best = 0
  let bestScore = -1
  for (let i = 0; i < workers.length; i++) {
    const score = fnv1a(key, seedOf(i))
    if (score > bestScore) {
      bestScore = score
      best = i
    }
  }
  return workers[best]
}
