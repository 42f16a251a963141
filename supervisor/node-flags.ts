/**
 * The Node flags the supervisor starts the proxy and the workers with: its own (`execArgv`),
 * plus a larger young generation unless the operator sized the heap.
 *
 * Why: the proxy and the workers allocate short-lived objects at every request (parsed bodies,
 * RPC frames, ioredis commands and replies) while hundreds of requests are in flight. V8's
 * default semi-space on 64-bit is 16 MB: scavenges come often, copy the same in-flight objects
 * each time and promote them to the old generation, which a full collection then sweeps.
 * A 32 MB semi-space halves how often that happens. Measured (docs/benchmarks.md, the eleventh
 * wave): a Redis pool's worker spent ~24 % less CPU per message on posts of 10 and ~15 % less in
 * the mixed scenario. It costs at most 2 × the size per process in resident memory, and only once
 * the load fills it.
 */

/** Node flags that size the young generation or the whole heap: given one, the operator decided. */
const HEAP_SIZING = /^--max[-_](semi[-_]space|heap)[-_]size\b/

/** True when `flags` (an argv list, or NODE_OPTIONS split on spaces) sizes the heap itself. */
function sizesHeap(flags: readonly string[]): boolean {
  return flags.some((f) => HEAP_SIZING.test(f))
}

/**
 * The flags for a child: `execArgv` plus `--max-semi-space-size=<semiSpaceMb>`, unless
 * `semiSpaceMb` is 0 (V8's default) or `execArgv` or `nodeOptions` (the NODE_OPTIONS the child
 * inherits) already give `--max-semi-space-size` or `--max-heap-size`.
 */
export function childExecArgv(execArgv: readonly string[], nodeOptions: string | undefined, semiSpaceMb: number): string[] {
  const flags = [...execArgv]
  if (semiSpaceMb === 0) return flags
  if (sizesHeap(flags) || sizesHeap((nodeOptions ?? '').split(/\s+/))) return flags
  flags.push(`--max-semi-space-size=${semiSpaceMb}`)
  return flags
}
