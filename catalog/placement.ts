/**
 * Where a new queue goes: weighted random choice among its flavor's pools, or among the pools
 * with no flavor (the default group). Zaqar's rule (zaqar/common/storage/select.py `weighted`): pools with weight ≤ 0
 * are skipped; draw r in [0, Σw) and take the pool whose cumulative interval holds r. The draw is
 * sticky — the catalog's insert-if-absent makes the first placement final — so randomness only
 * decides where a queue is born. The random source is an input (seeded in tests).
 */
import type { Pool } from './contract.js'

/** A source of uniform numbers in [0, 1), like `Math.random`. */
export type Random = () => number

/** The pools a queue of `flavor` (null: no flavor) may be placed on: right group, weight > 0. */
export function candidates(pools: readonly Pool[], flavor: string | null): Pool[] {
  return pools.filter((p) => p.flavor === flavor && p.weight > 0)
}

/** The chosen pool's name, or `null` when no pool qualifies. */
export function choosePool(pools: readonly Pool[], flavor: string | null, random: Random = Math.random): string | null {
  const eligible = candidates(pools, flavor)
  const total = eligible.reduce((s, p) => s + p.weight, 0)
  if (total <= 0) return null
  let r = random() * total
  for (const p of eligible) {
    if (r < p.weight) return p.name
    r -= p.weight
  }
  // Rounding at the very top of the range lands past the last interval.
  return eligible[eligible.length - 1]!.name
}

/** A small, fast seeded generator (mulberry32) for reproducible placement in tests. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}
