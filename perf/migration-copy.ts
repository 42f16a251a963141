#!/usr/bin/env node
/**
 * The copy rate of one live migration with no traffic (docs/benchmarks.md, "Live migration"): one
 * Missive with its SQLite default pool and two Redis pools (`r1`, `r2`, the shipped `fast`
 * configuration); a queue on the source (`--from sqlite`: the default pool; `--from redis`: r1)
 * is loaded with `--messages` messages of ~100 bytes, then `POST /v2/admin/migrations` moves it
 * to r2 at `--rate` (0: unlimited). Prints the migration's messages/s (POST → done) and the
 * switch pause. With `--profile <dir>`, every Missive process writes a `.cpuprofile` there on exit.
 *
 *   npm run build && node dist/perf/migration-copy.js --messages 200000 --from redis
 */
import { randomUUID } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { helpText, parseArgs, UsageError, type FlagSpec } from './lib/args.js'
import { HttpConnection } from './lib/http-client.js'
import { hasBinary, killAll, redisInfo, startMissive, startRedis } from './lib/procs.js'

const FLAGS: FlagSpec[] = [
  { name: 'messages', type: 'number', default: 200_000, help: 'messages in the queue that moves' },
  { name: 'from', type: 'string', default: 'redis', help: 'source pool: "redis" (r1) or "sqlite" (the default pool); the target is r2' },
  { name: 'rate', type: 'number', default: 0, help: 'the migration rate limit, messages/s (0: unlimited)' },
  { name: 'batch', type: 'number', default: 0, help: 'migration.batch for the service (0: its default)' },
  { name: 'profile', type: 'string', default: '', help: 'write each Missive process a .cpuprofile into this directory' },
  { name: 'help', type: 'boolean', default: false, help: 'show this help' },
]

const PROJECT = 'bench-migration-copy'
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2), FLAGS)
  if (a.help) {
    process.stdout.write(`Usage: node dist/perf/migration-copy.js [flags]\n\n${helpText(FLAGS)}\n`)
    return
  }
  if (!hasBinary('redis-server')) throw new UsageError('redis-server is not installed')
  if (a.from !== 'redis' && a.from !== 'sqlite') throw new UsageError('--from: "redis" or "sqlite"')
  const messages = Number(a.messages)
  const tmp = await mkdtemp(join(tmpdir(), 'missive-migration-copy-'))
  try {
    for (const d of ['r1', 'r2']) await mkdir(join(tmp, d), { recursive: true })
    const r1 = await startRedis({ dir: join(tmp, 'r1'), appendfsync: 'everysec' })
    const r2 = await startRedis({ dir: join(tmp, 'r2'), appendfsync: 'everysec' })
    const token = 'bench-admin-token'
    const config = join(tmp, 'config.json')
    await writeFile(config, JSON.stringify(Number(a.batch) > 0 ? { migration: { batch: Number(a.batch) } } : {}))
    const svc = await startMissive({
      dataDir: join(tmp, 'missive'),
      pool: 'sqlite:',
      durability: 'fast',
      ...(a.profile !== '' && { profileDir: String(a.profile) }),
      env: { MISSIVE_ADMIN_TOKEN: token, MISSIVE_ACCESS_LOG: 'false', MISSIVE_CONFIG: config },
    })
    const u = new URL(svc.url)
    const clientId = randomUUID()
    const head = (method: string, path: string, json: boolean): string =>
      `${method} ${path} HTTP/1.1\r\nHost: ${u.host}\r\nClient-ID: ${clientId}\r\nX-Project-ID: ${PROJECT}\r\nX-Auth-Token: ${token}` +
      (json ? '\r\nContent-Type: application/json' : '')
    const admin = new HttpConnection(u.hostname, Number(u.port), 120_000)
    const call = async (method: string, path: string, body: unknown, ok: number[]): Promise<Record<string, unknown>> => {
      const res = await admin.request(head(method, path, body !== undefined), body === undefined ? undefined : Buffer.from(JSON.stringify(body)))
      if (!ok.includes(res.status)) throw new Error(`${method} ${path} answered ${res.status}: ${res.body.toString().slice(0, 300)}`)
      return res.body.length === 0 ? {} : (JSON.parse(res.body.toString()) as Record<string, unknown>)
    }
    const fromRedis = a.from === 'redis'
    await call('PUT', '/v2/pools/r1', { uri: `${r1.url}?durability=fast`, weight: fromRedis ? 1 : 0 }, [201])
    await call('PUT', '/v2/pools/r2', { uri: `${r2.url}?durability=fast`, weight: 0 }, [201])
    if (fromRedis) await call('PATCH', '/v2/pools/default', { weight: 0 }, [200])
    // 503 until the supervisor has the new pools' workers up.
    for (let until = performance.now() + 30_000; ; await sleep(100)) {
      const r = await admin.request(head('PUT', '/v2/queues/big', true), Buffer.from('{}'))
      if (r.status === 201 || r.status === 204) break
      if (r.status !== 503 || performance.now() > until) throw new Error(`create answered ${r.status}`)
    }
    const one = JSON.stringify({ ttl: 3600, body: { event: 'migration-bench', pad: 'x'.repeat(48) } })
    const thousand = Buffer.from(`{"messages":[${new Array<string>(1000).fill(one).join(',')}]}`)
    let loaded = 0
    let busy = 0
    const t0 = performance.now()
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        const c = new HttpConnection(u.hostname, Number(u.port), 120_000)
        while (loaded < messages) {
          loaded += 1000
          // A 503 (the pool busy, Retry-After) is asked again.
          for (let tries = 0; ; tries++) {
            const r = await c.request(head('POST', '/v2/queues/big/messages', true), thousand)
            if (r.status === 201) break
            if (r.status !== 503 || tries > 50) throw new Error(`load post answered ${r.status}: ${r.body.toString().slice(0, 300)}`)
            if (busy++ === 0) console.log(`load: 503 (asked again): ${r.body.toString().slice(0, 300)}`)
            await sleep(100)
          }
        }
        c.close()
      }),
    )
    const stats = (await call('GET', '/v2/queues/big/stats', undefined, [200])) as { messages: { total: number } }
    if (busy > 0) console.log(`load: ${busy} posts answered 503 and were sent again`)
    console.log(`loaded ${stats.messages.total} messages in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
    const cpu = async (port: number): Promise<number> => {
      const info = await redisInfo(port)
      return Number(info.get('used_cpu_sys') ?? 0) + Number(info.get('used_cpu_user') ?? 0)
    }
    const cpu0 = [await cpu(r1.port), await cpu(r2.port)]
    const m0 = performance.now()
    const created = await call('POST', '/v2/admin/migrations', { project: PROJECT, queue: 'big', to_pool: 'r2', rate: Number(a.rate) }, [202])
    let m: Record<string, unknown> = created
    while (m.state !== 'done' && m.state !== 'failed' && m.state !== 'cancelled') {
      await sleep(50)
      m = await call('GET', `/v2/admin/migrations/${String(created.id)}`, undefined, [200])
    }
    const s = (performance.now() - m0) / 1000
    console.log(
      `${String(a.from)} → redis: ${String(m.state)}, ${String(m.messages_copied)} messages in ${s.toFixed(2)} s = ${Math.round(Number(m.messages_copied) / s)} msgs/s ` +
        `(API ${String(m.messages_per_second)}/s), pause ${String(m.pause_ms)} ms, journal ${String(m.journal_applied)}`,
    )
    const cpu1 = [await cpu(r1.port), await cpu(r2.port)]
    console.log(`redis-server CPU during the move: r1 ${(cpu1[0]! - cpu0[0]!).toFixed(2)} s, r2 ${(cpu1[1]! - cpu0[1]!).toFixed(2)} s`)
    admin.close()
    // The runner's warnings (a step retried, counts that differed), if any.
    for (const l of svc.output().split('\n')) if (l.includes('migration')) console.log(`  service: ${l.slice(0, 400)}`)
    // SIGTERM: the processes exit cleanly and write their profiles.
    await svc.stop()
  } finally {
    killAll()
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined)
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  killAll()
  process.exit(err instanceof UsageError ? 2 : 1)
})
