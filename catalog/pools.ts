/**
 * What the processes serving pools agree on, derived from a pool record alone: the supervisor
 * starts `poolWorkerCount` workers listening on `poolSocketPath(…, i)`, and every proxy connects
 * to the same paths — no registry of sockets is needed, and either side can restart on its own.
 */
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import type { Pool } from './contract.js'
import { resolveWorkers, type WorkersSetting } from '../shared/auto-workers.js'

/** Linux `sun_path` holds 108 bytes including the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107

/** The name of the pool the config's `defaultPool` registers, and that unplaced queues read. */
export const DEFAULT_POOL = 'default'

/** Pool and flavor names: what the admin API accepts (queue-name rules). */
export const isPoolName = (name: string): boolean => /^[A-Za-z0-9_.-]{1,64}$/.test(name)

/** Largest `options.workers`. */
export const MAX_POOL_WORKERS = 64

/**
 * Worker processes serving `pool` on each host: `options.workers` when it is an integer in
 * 0..64, else `defaultWorkers` for the default pool (the config's `workers`, "auto" resolved for
 * the pool's URI on this host: shared/auto-workers.ts) and 1 for others. 0 means none: the proxy
 * runs the pool's driver in its own process (proxy/embedded.ts).
 */
export function poolWorkerCount(pool: Pool, defaultWorkers: WorkersSetting): number {
  const w = pool.options?.workers
  if (typeof w === 'number' && Number.isInteger(w) && w >= 0 && w <= MAX_POOL_WORKERS) return w
  return pool.name === DEFAULT_POOL ? resolveWorkers(defaultWorkers, pool.uri).workers : 1
}

/**
 * The Unix socket of worker `index` of `pool`: `<dataDir>/run/<pool>-<index>.sock`. A name that
 * is not a plain file name, or that would make the path longer than `sun_path` allows, is
 * replaced by `h-<16 hex digits of its SHA-256>`. Throws when even that does not fit (the
 * message names `dataDir` as the thing to shorten).
 */
export function poolSocketPath(dataDir: string, pool: string, index: number): string {
  const plain = join(dataDir, 'run', `${pool}-${index}.sock`)
  if (/^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/.test(pool) && Buffer.byteLength(plain) <= MAX_SOCKET_PATH_BYTES) return plain
  const hashed = join(dataDir, 'run', `h-${createHash('sha256').update(pool).digest('hex').slice(0, 16)}-${index}.sock`)
  const bytes = Buffer.byteLength(hashed)
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new Error(
      `dataDir is too long for worker sockets: ${hashed} is ${bytes} bytes, Unix sockets allow ` +
        `${MAX_SOCKET_PATH_BYTES}. Choose a shorter dataDir (MISSIVE_DATA_DIR).`,
    )
  }
  return hashed
}

/** The process name of a pool's worker, for logs and metrics (`worker-0` for the default pool). */
export const poolWorkerName = (pool: string, index: number): string =>
  pool === DEFAULT_POOL ? `worker-${index}` : `worker-${pool}-${index}`
