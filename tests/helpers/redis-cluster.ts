/**
 * A real Redis Cluster on loopback for tests and the cluster bench: `masters` masters with
 * `replicasPerMaster` replicas each (Debian's `redis-server --cluster-enabled yes`, joined by
 * `redis-cli --cluster create … --cluster-replicas N --cluster-yes`), every node with AOF. Every
 * process is stopped by pid in teardown.
 */
import { spawnSync } from 'node:child_process'
import { Redis } from 'ioredis'
import { freePort, startRedis, waitFor, type RedisProcess, type Teardown } from './index.js'

export interface RedisClusterNodes {
  /** Every node, masters first as created (roles change on failover: ask `roleOf`). */
  nodes: RedisProcess[]
  /** `redis+cluster://` naming every node, with `query` appended. */
  uri(query?: string): string
  /** The nodes that are masters now (CLUSTER NODES as one node sees it). */
  masters(): Promise<RedisProcess[]>
  /**
   * Starts a node that was stopped or killed again, on its port, with its files (its
   * `nodes.conf`): it rejoins the cluster (as a replica, when its slots failed over meanwhile).
   */
  restart(node: RedisProcess): Promise<RedisProcess>
  /** Waits until every live node says `cluster_state:ok` and every master has an online replica (when it should). */
  settled(opts?: { replicas?: boolean; timeoutMs?: number }): Promise<void>
}

/** True if `redis-cli` can be run (it joins the nodes into a cluster). */
export function hasRedisCli(): boolean {
  return spawnSync('redis-cli', ['--version'], { stdio: 'ignore' }).status === 0
}

/** A client to one node (not cluster-aware), closed in teardown. */
function nodeClient(t: Teardown, port: number): Redis {
  const r = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, lazyConnect: false })
  r.on('error', () => {})
  t.teardown(() => r.disconnect())
  return r
}

/**
 * Starts the cluster and resolves once it serves every slot with every replica in sync.
 * `nodeTimeoutMs` is `cluster-node-timeout`: how long a master may be silent before its replica
 * takes over (the failover window's main part). `requireFullCoverage` is
 * `cluster-require-full-coverage` (default true, as Redis's): false lets the other masters serve
 * their slots while a failed master's are uncovered.
 */
export async function startRedisCluster(
  t: Teardown,
  opts: { masters?: number; replicasPerMaster?: number; appendfsync?: 'always' | 'everysec'; nodeTimeoutMs?: number; requireFullCoverage?: boolean } = {},
): Promise<RedisClusterNodes> {
  if (!hasRedisCli()) throw new Error('redis-cli is not installed (apt-get install redis-tools); Redis Cluster tests need it to create the cluster')
  const masters = opts.masters ?? 3
  const replicas = opts.replicasPerMaster ?? 1
  const nodes: RedisProcess[] = []
  const args = (bus: number): string[] => [
    '--cluster-enabled', 'yes',
    '--cluster-config-file', 'nodes.conf',
    '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 1000),
    '--cluster-port', String(bus),
    // A replica takes over whatever its link's age: the tests kill masters on purpose.
    '--cluster-replica-validity-factor', '0',
    '--cluster-require-full-coverage', opts.requireFullCoverage === false ? 'no' : 'yes',
  ]
  const buses = new Map<number, number>()
  for (let i = 0; i < masters * (1 + replicas); i++) {
    // The cluster bus gets its own free port (the default, port + 10000, may be taken or invalid).
    const bus = await freePort()
    const node = await startRedis(t, { appendfsync: opts.appendfsync ?? 'always', args: args(bus) })
    buses.set(node.port, bus)
    nodes.push(node)
  }
  const create = spawnSync(
    'redis-cli',
    ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'],
    { encoding: 'utf8', timeout: 60_000 },
  )
  if (create.status !== 0) throw new Error(`redis-cli --cluster create failed (${create.status}):\n${create.stdout}\n${create.stderr}`)
  const clients = new Map(nodes.map((n) => [n.port, nodeClient(t, n.port)]))
  const alive = (n: RedisProcess): boolean => n.child.exitCode === null && n.child.signalCode === null

  const cluster: RedisClusterNodes = {
    nodes,
    uri: (query = '') => `redis+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}${query === '' ? '' : `?${query}`}`,
    async restart(node) {
      const again = await startRedis(t, { appendfsync: opts.appendfsync ?? 'always', dir: node.dir, port: node.port, args: args(buses.get(node.port)!) })
      nodes[nodes.indexOf(node)] = again
      clients.get(node.port)!.disconnect()
      clients.set(node.port, nodeClient(t, node.port))
      return again
    },
    async masters() {
      const live = nodes.filter(alive)
      const text = (await clients.get(live[0]!.port)!.call('CLUSTER', 'NODES')) as string
      const ports = new Set<number>()
      for (const line of text.split('\n')) {
        const f = line.split(' ')
        if (f.length > 8 && f[2]!.includes('master') && !f[2]!.includes('fail')) ports.add(Number(/:(\d+)@/.exec(f[1]!)![1]))
      }
      return live.filter((n) => ports.has(n.port))
    },
    async settled({ replicas: withReplicas = true, timeoutMs = 30_000 } = {}) {
      await waitFor(
        async () => {
          for (const n of nodes.filter(alive)) {
            const info = (await clients.get(n.port)!.call('CLUSTER', 'INFO')) as string
            if (!/^cluster_state:ok/m.test(info)) return false
          }
          const ms = await cluster.masters()
          if (ms.length !== masters) return false
          if (!withReplicas) return true
          for (const m of ms) {
            const repl = await clients.get(m.port)!.info('replication')
            if ((repl.match(/^slave\d+:.*state=online/gm) ?? []).length < replicas) return false
          }
          return true
        },
        { what: 'the Redis Cluster to serve every slot, every replica in sync', timeoutMs },
      )
    },
  }
  await cluster.settled({ timeoutMs: 60_000 })
  return cluster
}
