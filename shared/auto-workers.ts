/**
 * `workers: "auto"` (the config's default): how many worker processes serve the default pool.
 *
 * A worker process earns its two process crossings per request (an RPC frame each way, and a
 * wake-up of another process) only when it runs in parallel with the proxy on a core of its own.
 * On a host whose cores the proxy and a Redis server on the same host already take, it cannot:
 * measured on 2 cores (docs/benchmarks.md, "The eleventh wave"), serving a loopback Redis pool
 * inside the proxy moved 12–61 % more messages per second with the same Redis work. Processes
 * are counted against cores: one worker per spare core.
 *
 * So "auto" is 0 (the proxy runs the pool's driver itself, docs/pools.md) for a Redis pool reached
 * on this host (loopback or a Unix socket) when the host has fewer than 3 CPUs, and 1 otherwise:
 * for SQLite (its writes and fsyncs are synchronous: they would stall HTTP in the proxy), for a
 * Redis on another host, Sentinel or Cluster, and wherever a core is spare.
 */
import { availableParallelism } from 'node:os'
import { isRedisUri, parseRedisUri, type RedisPoolOptions } from './storage/redis-uri.js'

export type WorkersSetting = number | 'auto'

/** Below this many CPUs a host has no core to spare for a worker beside the proxy and a local Redis. */
export const AUTO_MIN_CPUS_FOR_WORKER = 3

/** True when `uri` is a plain Redis pool on this host: a loopback address or a Unix socket. */
export function isLocalRedis(uri: string): boolean {
  if (!isRedisUri(uri)) return false
  let o: RedisPoolOptions
  try {
    // The pool's own parser (the durability given does not matter here): a URI it refuses is no
    // pool at all, and the worker or the proxy reports why when it opens it.
    o = parseRedisUri(uri, 'fast')
  } catch {
    return false
  }
  if (o.sentinels !== undefined || o.cluster !== undefined) return false
  if (o.path !== undefined) return true
  const host = o.host.toLowerCase()
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

/** What `setting` means for a pool on `uri` on a host with `cpus` CPUs, and why. */
export function resolveWorkers(setting: WorkersSetting, uri: string, cpus: number = availableParallelism()): { workers: number; why: string } {
  if (setting !== 'auto') return { workers: setting, why: 'set' }
  if (!isLocalRedis(uri)) return { workers: 1, why: 'auto: the pool is not a Redis on this host' }
  if (cpus >= AUTO_MIN_CPUS_FOR_WORKER) return { workers: 1, why: `auto: ${cpus} CPUs leave one for a worker beside the proxy and Redis` }
  return { workers: 0, why: `auto: ${cpus} CPUs, Redis on this host: no core is spare for a worker, the proxy serves the pool` }
}
