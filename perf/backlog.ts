#!/usr/bin/env node
/**
 * Open-loop latency on a Redis pool with and without a backlog: the experiment behind issue 3's
 * note. It runs the same open-loop window (mixed, batches of 10, 15 s after 2 s of warm-up)
 *
 *   A  on a fresh Missive and an empty Redis,
 *   B  on the same Missive after `--heavy` seconds of closed-loop load (which leaves a backlog)
 *      and `--settle` idle seconds,
 *   C  on a restarted Missive with that same Redis,
 *   D  on that Missive again after FLUSHALL (the backlog gone, the processes and AOF file kept),
 *
 * with the uWS hello-world floor at the same request rate before A and before B (is the load
 * generator itself aging?), and Redis's own latency events and memory for each window.
 *
 *   npm run build && node dist/perf/backlog.js --rate 5000 --heavy 40
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { helpText, parseArgs, UsageError, type FlagSpec } from './lib/args.js'
import { engineHelloOpen } from './lib/ceilings.js'
import { describeDamon, pauseDamon } from './lib/host.js'
import { openRequestRate, runLoad, type LoadOptions, type LoadResult } from './lib/load.js'
import { hasBinary, killAll, redisCommand, redisInfo, redisLatency, latencyText, startHello, startMissive, startRedis } from './lib/procs.js'

const FLAGS: FlagSpec[] = [
  { name: 'rate', type: 'number', default: 5000, help: 'open loop: messages/s each way' },
  { name: 'heavy', type: 'number', default: 40, help: 'seconds of closed-loop load between A and B (half posts, half mixed)' },
  { name: 'settle', type: 'number', default: 0, help: 'seconds of idle between the heavy load and B' },
  { name: 'window', type: 'number', default: 15, help: 'seconds of each measured open-loop window' },
  { name: 'pool-options', type: 'string', default: '', help: 'extra Redis pool URI options, e.g. gc_interval=0 (collector off)' },
  { name: 'pause-damon', type: 'boolean', default: false, help: "turn the host kernel's DAMON monitors off for the run and back on after (root)" },
  { name: 'help', type: 'boolean', default: false, help: 'show this help' },
]

const line = (tag: string, r: LoadResult): string =>
  `${tag}: ` + Object.entries(r.ops).map(([k, v]) => `${k} p50 ${v.p50} p99 ${v.p99} max ${v.max} ms`).join(' | ')

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2), FLAGS)
  if (a.help) {
    process.stdout.write(`Usage: node dist/perf/backlog.js [flags]\n\n${helpText(FLAGS)}\n`)
    return
  }
  if (!hasBinary('redis-server')) throw new UsageError('redis-server is not installed')
  const rate = Number(a.rate)
  const window = Number(a.window)
  const dir = await mkdtemp(join(tmpdir(), 'missive-backlog-'))
  console.log(`host DAMON monitors: ${describeDamon()}${a['pause-damon'] ? ', paused for this run' : ''}`)
  const restoreDamon = a['pause-damon'] ? pauseDamon() : (): void => undefined
  try {
    const base: LoadOptions = {
      url: '', producers: 0, consumers: 0, observers: 0, batch: 10, claimLimit: 10, deleteMode: 'bulk',
      size: 200, queues: 4, tenants: 1, durationS: window, rate: 0, connections: 64, prefix: 'open',
    }
    const hello = await startHello()
    const redis = await startRedis({ dir, appendfsync: 'everysec' })
    const pool = `redis://127.0.0.1:${redis.port}?durability=fast${a['pool-options'] ? `&${String(a['pool-options'])}` : ''}`
    await redisCommand(redis.port, ['CONFIG', 'SET', 'latency-monitor-threshold', '5'])
    let svc = await startMissive({ dataDir: dir, pool })

    const floor = async (tag: string): Promise<void> => {
      console.log(line(`floor (${tag})`, await engineHelloOpen(hello.url, openRequestRate(rate, base.batch, base.claimLimit), base.connections, window, 2)))
    }
    const open = async (tag: string): Promise<void> => {
      const o = { ...base, url: svc.url, producers: 1, consumers: 1, rate }
      await runLoad({ ...o, durationS: 2, drainMs: 1000 })
      await redisCommand(redis.port, ['LATENCY', 'RESET'])
      const eld = monitorEventLoopDelay({ resolution: 1 })
      eld.enable()
      const r = await runLoad(o)
      eld.disable()
      const events = [...(await redisLatency(redis.port, true))].map(([k, v]) => latencyText(k, v)).join(', ') || 'none over 5 ms'
      const mem = Math.round(Number((await redisInfo(redis.port)).get('used_memory') ?? 0) / 1048576)
      console.log(line(tag, r))
      console.log(`  Redis ${mem} MB; Redis events: ${events}; load generator event-loop delay p99 ${(eld.percentile(99) / 1e6).toFixed(1)} ms`)
    }

    await floor('fresh load generator')
    await open('A fresh Missive, empty Redis')
    const heavy = Number(a.heavy)
    await runLoad({ ...base, url: svc.url, producers: 32, durationS: heavy / 2, prefix: 'bench' })
    await runLoad({ ...base, url: svc.url, producers: 16, consumers: 16, durationS: heavy / 2, prefix: 'bench' })
    await new Promise((r) => setTimeout(r, Number(a.settle) * 1000))
    await floor('after the heavy load')
    await open('B same Missive, after the heavy load')
    await svc.stop()
    svc = await startMissive({ dataDir: dir, pool })
    await open('C restarted Missive, same Redis')
    // Same processes, same AOF file and page cache, but Redis's data set gone: does the data size matter?
    await redisCommand(redis.port, ['FLUSHALL'], 60_000)
    await open('D same as C after FLUSHALL')
    await svc.stop()
    await redis.stop()
    await hello.stop()
  } finally {
    killAll()
    restoreDamon()
    await rm(dir, { recursive: true, force: true }).catch(() => undefined)
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    process.stderr.write(`backlog: ${err instanceof UsageError ? err.message : ((err as Error).stack ?? String(err))}\n`)
    process.exit(err instanceof UsageError ? 2 : 1)
  })
}
