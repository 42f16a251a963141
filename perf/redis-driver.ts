/**
 * Raw throughput of the Redis driver in-process, next to a raw Redis ceiling measured in the same
 * run: `npm run build && node dist/perf/redis-driver.js [seconds] [flags]` (or `node --import tsx
 * perf/redis-driver.ts`). The Redis servers run the configuration we ship for each AOF mode
 * (perf/lib/procs.ts `startRedis`).
 *
 * Scenarios (closed loop, CONCURRENCY callers, ~200-byte bodies):
 * - post: batches of 10 per call;
 * - consume: claim 10 + bulk delete with the claim id;
 * - raw: a pipelined write loop doing what a post of 10 minimally must (one HSET of 10 fields and
 *   one ZADD of 10 members per batch), CONCURRENCY loops on one ioredis connection.
 * Variants: coalescing on/off, ioredis auto-pipelining on/off, AOF off / everysec / always.
 * Each row also gives the CPU per message moved: Redis's (`INFO cpu`, user + system, every
 * thread of redis-server) and this process's (`process.cpuUsage`: the driver, ioredis, the loop).
 *
 * Flags:
 * - `--modes none,fast,durable`: the AOF modes to run (default all three);
 * - `--variants all|default`: the three coalescing/pipelining variants, or only the default
 *   (coalescing on, auto-pipelining off);
 * - `--compare <driver.js>`: the Redis driver module of another build (e.g. an older commit built
 *   in another folder): each row is run with it first, then with this build, on the same server,
 *   so before and after come from the same run;
 * - `--commands`: after each row, the Redis commands it ran (calls and µs per message moved,
 *   `INFO commandstats`; commands run by scripts are counted under their own names).
 * Compare ratios within one run: absolute numbers depend on what else the machine is doing.
 */
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { RedisDriver } from '../worker/storage/redis/driver.js'
import { parseRedisUri } from '../shared/storage/redis-uri.js'
import { killAll, startRedis, type RedisService } from './lib/procs.js'
import { closedLoop, formatLoop, type LoopResult } from './lib/closed-loop.js'

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    modes: { type: 'string', default: 'none,fast,durable' },
    variants: { type: 'string', default: 'all' },
    compare: { type: 'string' },
    commands: { type: 'boolean', default: false },
  },
})
const SECONDS = Number(positionals[0] ?? 3)
const CONCURRENCY = 32
const BODY = JSON.stringify({ event: 'order.created', id: 'x'.repeat(150), n: 0 })

type DriverClass = typeof RedisDriver

/** A closed-loop result with the CPU each side spent per message moved (µs). */
interface Measured extends LoopResult {
  redisUs: number
  nodeUs: number
  commands: Map<string, { calls: number; usec: number }>
  moved: number
}

/** Redis's CPU seconds so far (user + system, all threads) and its per-command counters. */
async function redisCounters(redis: Redis): Promise<{ cpu: number; commands: Map<string, { calls: number; usec: number }> }> {
  const cpu = String(await redis.info('cpu'))
  const user = Number(/used_cpu_user:([\d.]+)/.exec(cpu)?.[1] ?? 0)
  const sys = Number(/used_cpu_sys:([\d.]+)/.exec(cpu)?.[1] ?? 0)
  const commands = new Map<string, { calls: number; usec: number }>()
  for (const m of String(await redis.info('commandstats')).matchAll(/cmdstat_(\S+?):calls=(\d+),usec=(\d+)/g)) {
    commands.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) })
  }
  return { cpu: user + sys, commands }
}

/** Runs `op` in CONCURRENCY closed loops for SECONDS (perf/lib/closed-loop.ts), measuring CPU. */
async function loop(admin: Redis, op: (i: number) => Promise<number>): Promise<Measured> {
  let moved = 0
  const before = await redisCounters(admin)
  const cpu0 = process.cpuUsage()
  const r = await closedLoop(CONCURRENCY, SECONDS, async (i) => {
    const n = await op(i)
    moved += n
    return n
  })

  const cpu = process.cpuUsage(cpu0)
  const after = await redisCounters(admin)
  const per = Math.max(moved, 1)
  const commands = new Map<string, { calls: number; usec: number }>()
  for (const [name, c] of after.commands) {
    const b = before.commands.get(name) ?? { calls: 0, usec: 0 }
    if (c.calls > b.calls) commands.set(name, { calls: c.calls - b.calls, usec: c.usec - b.usec })
  }
  return { ...r, moved, redisUs: ((after.cpu - before.cpu) * 1e6) / per, nodeUs: (cpu.user + cpu.system) / per, commands }
}

const fmt = (r: Measured): string => `${formatLoop(r)}  redis ${r.redisUs.toFixed(1).padStart(5)} µs/msg  node ${r.nodeUs.toFixed(1).padStart(5)} µs/msg`

function printCommands(r: Measured): void {
  if (!flags.commands) return
  const rows = [...r.commands].sort((a, b) => b[1].usec - a[1].usec)
  for (const [name, c] of rows) {
    if (name === 'info') continue
    console.log(`      ${name.padEnd(14)} ${(c.calls / r.moved).toFixed(2).padStart(6)} calls/msg  ${(c.usec / r.moved).toFixed(2).padStart(6)} µs/msg`)
  }
}

async function rawCeiling(server: RedisService, admin: Redis): Promise<Measured> {
  const redis = new Redis({ port: server.port, host: '127.0.0.1' })
  const key = `raw:${randomUUID()}`
  let seq = 0
  const r = await loop(admin, async () => {
    const fields: string[] = []
    const members: (string | number)[] = []
    for (let i = 0; i < 10; i++) {
      const id = randomUUID()
      fields.push(id, BODY)
      members.push(++seq, id)
    }
    await redis.pipeline().hset(`${key}:m`, ...fields).zadd(`${key}:a`, ...members).exec()
    return 10
  })
  await redis.del(`${key}:m`, `${key}:a`)
  redis.disconnect()
  return r
}

async function driverRuns(Driver: DriverClass, server: RedisService, admin: Redis, query: string, coalesce: boolean): Promise<{ post: Measured; consume: Measured }> {
  const driver = await Driver.open({ ...parseRedisUri(`${server.url}?${query}`, 'fast'), coalesce, gcIntervalMs: 0 })
  const ref = { project: `bench-${randomUUID()}`, queue: 'q' }
  const msgs = Array.from({ length: 10 }, () => ({ body: BODY }))
  const opts = { clientId: randomUUID(), defaultTtl: 3600, postBytes: 2500, queuePolicy: true }
  const post = await loop(admin, async () => (await driver.postMessages(ref, msgs, opts)).length)
  const consume = await loop(admin, async () => {
    const c = await driver.createClaim(ref, { ttl: 60, grace: 60, limit: 10 })
    if (c === null) return 0
    await driver.deleteMessages(
      ref,
      c.messages.map((m) => m.id),
      [c.id],
    )
    return c.messages.length
  })
  await driver.deleteQueue(ref)
  await driver.close()
  return { post, consume }
}

async function main(): Promise<void> {
  const all = [
    { key: 'none', name: 'no persistence', appendfsync: undefined, query: 'verify=false' },
    { key: 'fast', name: 'AOF everysec (fast)', appendfsync: 'everysec' as const, query: 'durability=fast' },
    { key: 'durable', name: 'AOF always (durable)', appendfsync: 'always' as const, query: 'durability=durable' },
  ]
  const wanted = new Set(flags.modes.split(','))
  const modes = all.filter((m) => wanted.has(m.key))
  const variants: (readonly [boolean, boolean])[] =
    flags.variants === 'default'
      ? [[true, false]]
      : [
          [true, false],
          [true, true],
          [false, false],
        ]
  const builds: { label: string; Driver: DriverClass }[] = [{ label: 'this build', Driver: RedisDriver }]
  if (flags.compare !== undefined) {
    const mod = (await import(pathToFileURL(resolve(flags.compare)).href)) as { RedisDriver: DriverClass }
    builds.unshift({ label: `compare (${flags.compare})`, Driver: mod.RedisDriver })
  }
  for (const mode of modes) {
    const dir = mkdtempSync(join(tmpdir(), 'missive-redis-bench-'))
    const server = await startRedis({ dir, appendfsync: mode.appendfsync })
    const admin = new Redis({ port: server.port, host: '127.0.0.1' })
    console.log(`\n== ${mode.name}`)
    for (const [coalesce, ap] of variants) {
      // The ceiling is measured right before each variant: the ratio compares like with like.
      const raw = await rawCeiling(server, admin)
      console.log(`raw pipelined HSET+ZADD, batch 10        ${fmt(raw)}`)
      for (const build of builds) {
        const r = await driverRuns(build.Driver, server, admin, `${mode.query}&auto_pipelining=${ap}`, coalesce)
        const label = `coalesce=${coalesce ? 'on ' : 'off'} autopipe=${ap ? 'on ' : 'off'}`
        if (builds.length > 1) console.log(`  ${build.label}`)
        console.log(`${label} post×10          ${fmt(r.post)}  (${(r.post.rate / raw.rate).toFixed(2)}× raw)`)
        printCommands(r.post)
        console.log(`${label} claim10+delete   ${fmt(r.consume)}  (${(r.consume.rate / raw.rate).toFixed(2)}× raw)`)
        printCommands(r.consume)
      }
    }
    admin.disconnect()
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

try {
  await main()
} finally {
  killAll()
}
