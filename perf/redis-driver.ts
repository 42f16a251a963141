/**
 * Raw throughput of the Redis driver in-process, next to a raw Redis ceiling measured in the same
 * run: `npm run build && node dist/perf/redis-driver.js [seconds]` (or `node --import tsx
 * perf/redis-driver.ts`). The Redis servers run the configuration we ship for each AOF mode
 * (perf/lib/procs.ts `startRedis`).
 *
 * Scenarios (closed loop, CONCURRENCY callers, ~200-byte bodies):
 * - post: batches of 10 per call;
 * - consume: claim 10 + bulk delete with the claim id;
 * - raw: a pipelined write loop doing what a post of 10 minimally must (one HSET of 10 fields and
 *   one ZADD of 10 members per batch), CONCURRENCY loops on one ioredis connection.
 * Variants: coalescing on/off, ioredis auto-pipelining on/off, AOF off / everysec / always.
 * Compare ratios within one run: absolute numbers depend on what else the machine is doing.
 */
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RedisDriver } from '../worker/storage/redis/driver.js'
import { parseRedisUri } from '../shared/storage/redis-uri.js'
import { killAll, startRedis, type RedisService } from './lib/procs.js'
import { closedLoop, formatLoop, type LoopResult } from './lib/closed-loop.js'

const SECONDS = Number(process.argv[2] ?? 3)
const CONCURRENCY = 32
const BODY = JSON.stringify({ event: 'order.created', id: 'x'.repeat(150), n: 0 })

/** Runs `op` in CONCURRENCY closed loops for SECONDS (perf/lib/closed-loop.ts). */
const loop = (op: (i: number) => Promise<number>): Promise<LoopResult> => closedLoop(CONCURRENCY, SECONDS, op)

const fmt = formatLoop

async function rawCeiling(server: RedisService): Promise<LoopResult> {
  const redis = new Redis({ port: server.port, host: '127.0.0.1' })
  const key = `raw:${randomUUID()}`
  let seq = 0
  const r = await loop(async () => {
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

async function driverRuns(server: RedisService, query: string, coalesce: boolean): Promise<{ post: LoopResult; consume: LoopResult }> {
  const driver = await RedisDriver.open({ ...parseRedisUri(`${server.url}?${query}`, 'fast'), coalesce, gcIntervalMs: 0 })
  const ref = { project: `bench-${randomUUID()}`, queue: 'q' }
  const msgs = Array.from({ length: 10 }, () => ({ body: BODY }))
  const opts = { clientId: randomUUID(), defaultTtl: 3600, postBytes: 2500, queuePolicy: true }
  const post = await loop(async () => (await driver.postMessages(ref, msgs, opts)).length)
  const consume = await loop(async () => {
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
  const modes = [
    { name: 'no persistence', appendfsync: undefined, query: 'verify=false' },
    { name: 'AOF everysec (fast)', appendfsync: 'everysec' as const, query: 'durability=fast' },
    { name: 'AOF always (durable)', appendfsync: 'always' as const, query: 'durability=durable' },
  ]
  for (const mode of modes) {
    const dir = mkdtempSync(join(tmpdir(), 'missive-redis-bench-'))
    const server = await startRedis({ dir, appendfsync: mode.appendfsync })
    console.log(`\n== ${mode.name}`)
    for (const [coalesce, ap] of [
      [true, false],
      [true, true],
      [false, false],
    ] as const) {
      // The ceiling is measured right before each variant: the ratio compares like with like.
      const raw = await rawCeiling(server)
      console.log(`raw pipelined HSET+ZADD, batch 10        ${fmt(raw)}`)
      const r = await driverRuns(server, `${mode.query}&auto_pipelining=${ap}`, coalesce)
      const label = `coalesce=${coalesce ? 'on ' : 'off'} autopipe=${ap ? 'on ' : 'off'}`
      console.log(`${label} post×10          ${fmt(r.post)}  (${(r.post.rate / raw.rate).toFixed(2)}× raw)`)
      console.log(`${label} claim10+delete   ${fmt(r.consume)}  (${(r.consume.rate / raw.rate).toFixed(2)}× raw)`)
    }
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

try {
  await main()
} finally {
  killAll()
}
