#!/usr/bin/env node
/**
 * What a Redis pool's append-only file costs at restart (docs/redis.md, "Operating notes"): the
 * other side of the shipped `auto-aof-rewrite-percentage`. A higher threshold means fewer
 * rewrites, but a longer log for Redis to replay when it starts. This measures both parts of a
 * start on this machine's disk, with the configuration we ship:
 *
 * 1. fills a fresh Redis through Missive (`workers: 0`, posts of 10 for `--fill-seconds`) and
 *    rewrites its AOF (`BGREWRITEAOF`), so the log is its base alone;
 * 2. restarts Redis and times it until it answers `PING` (not `LOADING`): the base's cost;
 * 3. runs a mixed load (16 producers, 16 consumers) until the incremental log has grown to
 *    `--incr-ratio` times the base (automatic rewrites off meanwhile, so nothing resets it);
 * 4. restarts Redis again: the base's cost plus the log's replay.
 *
 * It prints both times, the replay rate, and what that means for the longest restart at a given
 * threshold: at `P` % the log can grow to P/100 × base before a rewrite. A measurement, not a
 * test; run it alone.
 *
 *   node dist/perf/aof-restart.js [--fill-seconds 10] [--incr-ratio 3] [--durability fast]
 */
import { mkdtemp, mkdir, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { helpText, parseArgs, UsageError, type FlagSpec } from './lib/args.js'
import { runLoad, standardLoad } from './lib/load.js'
import { aofQuiet, awaitRedis, freePort, redisCommand, redisInfo, redisServerArgs, spawnRedis, startMissive, stopChild, track } from './lib/procs.js'

const FLAGS: FlagSpec[] = [
  { name: 'fill-seconds', type: 'number', default: 10, help: 'seconds of posts of 10 that make the data set (32 connections, 4 queues)' },
  { name: 'incr-ratio', type: 'number', default: 3, help: 'size of the incremental log to replay, in multiples of the base' },
  { name: 'durability', type: 'string', default: 'fast', help: 'shipped configuration to run: fast (redis-fast.conf) or durable (redis-durable.conf)' },
  { name: 'max-churn-seconds', type: 'number', default: 180, help: 'give up growing the log after this long' },
  { name: 'help', type: 'boolean', default: false, help: 'show this help' },
]

const MB = 1e6

/** Seconds from spawning `redis-server` on `port` until it answers PING, and its pid handle. */
async function timedStart(args: string[], port: number) {
  const redis = spawnRedis(args)
  track(redis.child, false)
  const t0 = performance.now()
  const up = await awaitRedis(redis.child, port, 600_000)
  if (up !== 'up') throw new Error(`redis-server did not come up (${up}): ${redis.output().slice(-600)}`)
  return { ...redis, seconds: (performance.now() - t0) / 1000 }
}

async function aofSizes(port: number): Promise<{ current: number; base: number; used: number }> {
  const info = await redisInfo(port)
  return { current: Number(info.get('aof_current_size')), base: Number(info.get('aof_base_size')), used: Number(info.get('used_memory')) }
}

/** The files of the AOF directory, `name=size MB`. */
async function files(dir: string): Promise<string> {
  const d = join(dir, 'appendonlydir')
  const out: string[] = []
  for (const f of (await readdir(d)).sort()) out.push(`${f} ${((await stat(join(d, f))).size / MB).toFixed(0)} MB`)
  return out.join(', ')
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2), FLAGS)
  if (a.help) {
    process.stdout.write(`usage: node dist/perf/aof-restart.js [flags]\n${helpText(FLAGS)}\n`)
    return
  }
  const durability = a.durability as string
  if (durability !== 'fast' && durability !== 'durable') throw new UsageError('--durability is fast or durable')
  const ratio = a['incr-ratio'] as number
  const work = await mkdtemp(join(tmpdir(), 'missive-aof-restart-'))
  const redisDir = join(work, 'redis')
  await mkdir(redisDir)
  const port = await freePort()
  // Automatic rewrites off: the measurement decides when the log is rewritten and how long it gets.
  const args = redisServerArgs({ port, dir: redisDir, appendfsync: durability === 'durable' ? 'always' : 'everysec', shippedConfig: true, extra: ['--auto-aof-rewrite-percentage', '0'] })
  let redis = await timedStart(args, port)
  const svc = await startMissive({ dataDir: join(work, 'missive'), pool: `redis://127.0.0.1:${port}`, durability: durability as 'fast' | 'durable', workers: 0 })
  try {
    const fill = await runLoad({ ...standardLoad(svc.url, a['fill-seconds'] as number, 32), producers: 32, batch: 10 })
    await redisCommand(port, ['BGREWRITEAOF'])
    // A rewrite of a few hundred MB takes seconds; allow minutes on a slow disk.
    await aofQuiet(port, 600_000)
    const filled = await aofSizes(port)
    process.stdout.write(`filled: ${Math.round(fill.msgsInPerS * fill.seconds).toLocaleString('en-US')} messages, used_memory ${(filled.used / MB).toFixed(0)} MB; ${await files(redisDir)}\n`)

    await stopChild(redis.child, 120_000, false)
    redis = await timedStart(args, port)
    const baseOnly = redis.seconds
    process.stdout.write(`restart, base only: ${baseOnly.toFixed(2)} s\n`)

    // Missive reconnects by itself; churn until the incremental log is `ratio` times the base.
    const deadline = Date.now() + (a['max-churn-seconds'] as number) * 1000
    let sizes = await aofSizes(port)
    while (sizes.current - sizes.base < ratio * sizes.base && Date.now() < deadline) {
      await runLoad({ ...standardLoad(svc.url, 5, 32), producers: 16, consumers: 16 })
      sizes = await aofSizes(port)
    }
    const incr = sizes.current - sizes.base
    process.stdout.write(`grown: ${await files(redisDir)}\n`)
    await svc.stop()
    await stopChild(redis.child, 120_000, false)
    redis = await timedStart(args, port)
    const full = redis.seconds
    const rate = incr / MB / Math.max(0.001, full - baseOnly)
    process.stdout.write(`restart, base ${(sizes.base / MB).toFixed(0)} MB + log ${(incr / MB).toFixed(0)} MB: ${full.toFixed(2)} s (log replayed at ~${rate.toFixed(0)} MB/s)\n\n`)
    process.stdout.write('| auto-aof-rewrite-percentage | log before a rewrite, at most | longest restart, estimated |\n|--:|--:|--:|\n')
    for (const p of [100, 200, 400, 800]) {
      const log = (p / 100) * sizes.base
      process.stdout.write(`| ${p} | ${(log / MB).toFixed(0)} MB | ${(baseOnly + log / MB / rate).toFixed(1)} s |\n`)
    }
  } finally {
    await svc.stop().catch(() => undefined)
    await stopChild(redis.child, 120_000, false).catch(() => undefined)
    await rm(work, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof UsageError ? '' : 'aof-restart: '}${(err as Error).message}\n`)
  process.exit(err instanceof UsageError ? 2 : 1)
})
