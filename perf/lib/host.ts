/**
 * The host kernel's DAMON monitors (Data Access MONitor, /sys/kernel/mm/damon/admin): what runs,
 * and pausing it for a benchmark.
 *
 * Why the bench cares: the machines we measure on are paravirtualised guests whose kernel runs a
 * kdamond in physical-address mode with a "pageout" scheme (proactive reclaim of cold page cache).
 * To find cold memory it keeps clearing and re-checking the accessed bits of sampled pages. On
 * these guests page-table work is expensive (a first touch of a page costs ~12 µs here, ~0.3 µs
 * on bare metal), and the sampled pages are mostly those of the biggest process: a Redis holding
 * the pool's data. With ~700 MB in the serving Redis, the open-loop p99 at 5k msgs/s each way was
 * 21–33 ms with the monitor on and 5–8 ms with it paused, same binaries, same run of the script;
 * 850 MB held by a *different* Redis process did not hurt. docs/benchmarks.md has the numbers.
 *
 * Pausing writes `off` to each running kdamond's `state` and `on` back afterwards (root only);
 * the restore also runs on exit and on SIGINT / SIGTERM, so an interrupted bench does not leave
 * the host's reclaim off.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const ADMIN = '/sys/kernel/mm/damon/admin/kdamonds'

export interface Kdamond {
  /** sysfs directory of the kdamond. */
  readonly dir: string
  /** `on` or `off`. */
  readonly state: string
  /** Operations set of each context (`paddr`, `vaddr`, `fvaddr`). */
  readonly ops: string[]
  /** Action of each scheme (`pageout`, `lru_prio`, `stat`, …). */
  readonly actions: string[]
}

const read = (path: string): string => {
  try {
    return readFileSync(path, 'utf8').trim()
  } catch {
    return ''
  }
}

const numbered = (dir: string): string[] => {
  try {
    return readdirSync(dir).filter((n) => /^\d+$/.test(n)).map((n) => join(dir, n))
  } catch {
    return []
  }
}

/** Every kdamond the admin interface lists (none when the kernel has no DAMON sysfs). */
export function kdamonds(): Kdamond[] {
  if (!existsSync(ADMIN)) return []
  return numbered(ADMIN).map((dir) => {
    const contexts = numbered(join(dir, 'contexts'))
    return {
      dir,
      state: read(join(dir, 'state')),
      ops: contexts.map((c) => read(join(c, 'operations'))),
      actions: contexts.flatMap((c) => numbered(join(c, 'schemes')).map((s) => read(join(s, 'action')))),
    }
  })
}

/** One line for a report: `none`, or e.g. `1 kdamond on (paddr; pageout)`. */
export function describeDamon(list: Kdamond[] = kdamonds()): string {
  if (list.length === 0) return 'none'
  return list.map((k) => `kdamond ${k.state} (${[...new Set(k.ops)].join(', ') || '?'}; ${[...new Set(k.actions)].join(', ') || 'no scheme'})`).join(', ')
}

/**
 * Turns every running kdamond off and returns the function that turns them back on (idempotent).
 * Throws when one cannot be turned off (not root, say), after restoring the ones it did stop.
 */
export function pauseDamon(): () => void {
  const stopped: string[] = []
  let restored = false
  const restore = (): void => {
    if (restored) return
    restored = true
    for (const dir of stopped) {
      try {
        writeFileSync(join(dir, 'state'), 'on')
      } catch {
        process.stderr.write(`could not turn ${dir} back on: write "on" to its state file as root\n`)
      }
    }
    process.off('exit', restore)
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
  const onSignal = (sig: NodeJS.Signals): void => {
    restore()
    process.exit(sig === 'SIGINT' ? 130 : 143)
  }
  process.on('exit', restore)
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  for (const k of kdamonds()) {
    if (k.state !== 'on') continue
    try {
      writeFileSync(join(k.dir, 'state'), 'off')
    } catch (err) {
      restore()
      throw new Error(`cannot pause ${k.dir} (${(err as Error).message}): run as root, or leave DAMON on`)
    }
    stopped.push(k.dir)
  }
  return restore
}
