/**
 * Real Redis replication topologies on loopback for the HA tests: one master, its replicas and
 * a Sentinel group watching them (Debian's `redis-server` and `redis-sentinel`), every process
 * stopped by pid in teardown.
 */
import { spawn, spawnSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { awaitRedis, capture } from '../../perf/lib/procs.js'
import { exited, freePort, startRedis, tempDir, waitFor, type RedisProcess, type Teardown } from '../helpers/index.js'

export interface SentinelProcess {
  port: number
  pid: number
  output(): string
}

export interface SentinelGroup {
  /** The master's name in the Sentinels' configuration. */
  name: string
  /** The master at the start. */
  master: RedisProcess
  replicas: RedisProcess[]
  sentinels: SentinelProcess[]
  /** `redis+sentinel://…/<name>` with `query` appended. */
  uri(query?: string): string
  /** The master's port as the Sentinels report it now. */
  masterPort(): Promise<number>
}

/** True if `redis-sentinel` can be run. */
export function hasSentinel(): boolean {
  return spawnSync('redis-sentinel', ['--version'], { stdio: 'ignore' }).status === 0
}

/** A client for one Sentinel (or server), closed in teardown. */
export function sentinelClient(t: Teardown, port: number): Redis {
  const r = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, lazyConnect: false })
  r.on('error', () => {})
  t.teardown(() => r.disconnect())
  return r
}

/**
 * Starts a master, `replicas` replicas of it and `sentinels` Sentinels (quorum: a majority)
 * that take the master for down after `downAfterMs`, each Redis with AOF and `appendfsync`;
 * resolves once every replica is in sync and every Sentinel knows every replica and every
 * other Sentinel.
 */
export async function startSentinelGroup(
  t: Teardown,
  opts: {
    replicas?: number
    sentinels?: number
    appendfsync: 'always' | 'everysec'
    downAfterMs?: number
    name?: string
    /** Per replica: its own `appendfsync`, and its `replica-priority` (0: never promoted). */
    replicaOptions?: { appendfsync?: 'always' | 'everysec'; priority?: number }[]
  },
): Promise<SentinelGroup> {
  if (!hasSentinel()) throw new Error('redis-sentinel is not installed (apt-get install redis-sentinel); Sentinel tests need real Sentinels')
  const name = opts.name ?? 'missive-master'
  const master = await startRedis(t, { appendfsync: opts.appendfsync })
  const replicas = await Promise.all(
    Array.from({ length: opts.replicas ?? 2 }, (_, i) => {
      const o = opts.replicaOptions?.[i] ?? {}
      const args = ['--replicaof', '127.0.0.1', String(master.port)]
      if (o.priority !== undefined) args.push('--replica-priority', String(o.priority))
      return startRedis(t, { appendfsync: o.appendfsync ?? opts.appendfsync, args })
    }),
  )
  const probe = sentinelClient(t, master.port)
  await waitFor(async () => {
    const info = await probe.info('replication')
    return (info.match(/^slave\d+:.*state=online/gm) ?? []).length === replicas.length
  }, { what: 'replicas in sync', timeoutMs: 20_000 })

  const n = opts.sentinels ?? 3
  const sentinels: SentinelProcess[] = []
  for (let i = 0; i < n; i++) {
    const dir = await tempDir(t, 'missive-sentinel-')
    const port = await freePort()
    const conf = join(dir, 'sentinel.conf')
    // The configuration file must be writable: Sentinel records what it learns there.
    await writeFile(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        'daemonize no',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${master.port} ${Math.floor(n / 2) + 1}`,
        `sentinel down-after-milliseconds ${name} ${opts.downAfterMs ?? 1000}`,
        `sentinel failover-timeout ${name} 10000`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n'),
    )
    const child = spawn('redis-sentinel', [conf], { stdio: ['ignore', 'pipe', 'pipe'] })
    const output = capture(child, 64 * 1024)
    const exit = exited(child)
    t.teardown(async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      try {
        process.kill(child.pid!, 'SIGKILL')
      } catch {
        return
      }
      await exit
    })
    const up = await awaitRedis(child, port, 10_000)
    if (up !== 'up') throw new Error(`redis-sentinel on port ${port} ${up}:\n${output()}`)
    sentinels.push({ port, pid: child.pid!, output })
  }
  const clients = sentinels.map((s) => sentinelClient(t, s.port))
  await waitFor(
    async () => {
      for (const c of clients) {
        const known = (await c.call('SENTINEL', 'replicas', name)) as unknown[]
        const peers = (await c.call('SENTINEL', 'sentinels', name)) as unknown[]
        if (known.length !== replicas.length || peers.length !== n - 1) return false
      }
      return true
    },
    { what: 'every Sentinel to know every replica and every other Sentinel', timeoutMs: 30_000 },
  )
  return {
    name,
    master,
    replicas,
    sentinels,
    uri: (query = '') => `redis+sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${name}${query === '' ? '' : `?${query}`}`,
    masterPort: async () => Number(((await clients[0]!.call('SENTINEL', 'get-master-addr-by-name', name)) as string[])[1]),
  }
}
