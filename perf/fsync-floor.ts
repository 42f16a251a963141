/**
 * The disk's floor for a durable Redis pool (docs/benchmarks.md, "T4 on a durable pool: the
 * disk's floor"). With `appendfsync always`, Redis answers a write only after `fdatasync` of its
 * AOF returns, so no request on a durable pool can be faster than that call. This measures it
 * with no Redis and no Missive: one process appends small records to a file in `--dir` (the
 * filesystem Redis's AOF is on), `fdatasync` after each, at `--rate` appends per second, and
 * records how long each `fdatasync` took. Two phases of `--seconds` each:
 *
 * - `quiet`: nothing else writes;
 * - `rewrite`: a second process does what an AOF rewrite does to the disk meanwhile — writes a
 *   file of `--rewrite-mb` MiB in 4 MiB chunks, `fsync` after each chunk (Redis's
 *   `aof-rewrite-incremental-fsync`), renames it over another and unlinks the old file of the
 *   same size (the history file Redis deletes when the rewrite ends), in a loop until the phase
 *   ends.
 *
 * p50 / p99 / max per phase. A measurement, not a test; run it alone (it loads the disk).
 *
 *   node dist/perf/fsync-floor.js [--dir /var/lib/redis] [--seconds 10] [--rate 2000] [--rewrite-mb 256]
 */
import { fork } from 'node:child_process'
import { closeSync, fdatasyncSync, fsyncSync, mkdtempSync, openSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

const { values } = parseArgs({
  options: {
    dir: { type: 'string', default: tmpdir() },
    seconds: { type: 'string', default: '10' },
    rate: { type: 'string', default: '2000' },
    'rewrite-mb': { type: 'string', default: '256' },
    // Internal: the child process that plays the rewrite.
    'rewriter-in': { type: 'string' },
  },
})

const CHUNK = 4 * 1024 * 1024

/** The child: rewrite-like disk work in `dir` until its parent disconnects. */
function rewriter(dir: string, mb: number): void {
  const chunk = Buffer.alloc(CHUNK, 0x61)
  let stop = false
  process.on('disconnect', () => (stop = true))
  const once = (): void => {
    const tmp = join(dir, 'rewrite.tmp')
    const fd = openSync(tmp, 'w')
    for (let written = 0; written < mb * 1024 * 1024 && !stop; written += CHUNK) {
      writeSync(fd, chunk)
      fsyncSync(fd)
    }
    closeSync(fd)
    // The new base replaces the old one, and the old history file goes.
    try {
      renameSync(join(dir, 'base'), join(dir, 'history'))
    } catch {
      // first round: no base yet
    }
    renameSync(tmp, join(dir, 'base'))
    try {
      unlinkSync(join(dir, 'history'))
    } catch {
      // first round
    }
    if (!stop) setImmediate(once)
    else process.exit(0)
  }
  process.send?.('started')
  once()
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0
}

/** Appends and fdatasyncs at `rate`/s for `seconds`; the fdatasync times, ms. */
async function appendPhase(file: string, seconds: number, rate: number): Promise<number[]> {
  const fd = openSync(file, 'a')
  const record = Buffer.alloc(200, 0x62)
  const times: number[] = []
  const start = performance.now()
  const end = start + seconds * 1000
  let due = start
  try {
    while (performance.now() < end) {
      // Paced like a steady request stream: catch up without a burst after a slow call.
      // (Timers are coarse: sleep only when more than 2 ms ahead, else go on at once.)
      const now = performance.now()
      if (due - now > 2) await new Promise((r) => setTimeout(r, due - now))
      due = Math.max(due + 1000 / rate, performance.now() - 10)
      writeSync(fd, record)
      const t0 = performance.now()
      fdatasyncSync(fd)
      times.push(performance.now() - t0)
    }
  } finally {
    closeSync(fd)
  }
  return times
}

function summary(name: string, times: number[], seconds: number): string {
  const s = [...times].sort((a, b) => a - b)
  const f = (v: number): string => v.toFixed(2)
  return `| ${name} | ${(times.length / seconds).toFixed(0)} | ${f(percentile(s, 50))} | ${f(percentile(s, 99))} | ${f(percentile(s, 99.9))} | ${f(s[s.length - 1] ?? 0)} |`
}

async function main(): Promise<void> {
  if (values['rewriter-in'] !== undefined) return rewriter(values['rewriter-in'], Number(values['rewrite-mb']))
  const seconds = Number(values.seconds)
  const rate = Number(values.rate)
  const work = mkdtempSync(join(values.dir, 'missive-fsync-floor-'))
  try {
    const quiet = await appendPhase(join(work, 'aof'), seconds, rate)
    const child = fork(process.argv[1]!, ['--rewriter-in', work, '--rewrite-mb', values['rewrite-mb']], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve())
      child.once('error', reject)
    })
    const busy = await appendPhase(join(work, 'aof'), seconds, rate)
    child.disconnect()
    await new Promise((r) => child.once('exit', r))
    process.stdout.write(`fdatasync after each 200-byte append at ${rate}/s, ${seconds} s per phase, in ${values.dir}; ms\n`)
    process.stdout.write('| phase | appends/s | p50 | p99 | p99.9 | max |\n|---|--:|--:|--:|--:|--:|\n')
    process.stdout.write(`${summary('quiet', quiet, seconds)}\n`)
    process.stdout.write(`${summary(`rewrite (${values['rewrite-mb']} MiB written, fsync per 4 MiB, renamed, old unlinked, in a loop)`, busy, seconds)}\n`)
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

await main()
