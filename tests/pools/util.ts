/** Helpers for the full-service pool tests: an HTTP client, pool worker pids, Redis key scans. */
import { randomUUID } from 'node:crypto'
import { readdir, readFile, readlink } from 'node:fs/promises'
import { Redis } from 'ioredis'
import { refOfTag } from '../../worker/storage/redis/keys.js'
import { zaqarClient, type HttpResp } from '../helpers/http.js'
import { childProcesses, type Teardown } from '../helpers/index.js'
import { ADMIN_TOKEN } from './harness.js'

export { ADMIN_TOKEN }

export interface Client {
  project: string
  req(method: string, path: string, opts?: { body?: unknown; admin?: boolean; headers?: Record<string, string> }): Promise<HttpResp>
}

/** A Zaqar client for `base`; `admin: true` adds the admin token to that request. */
export function client(base: string, project = `p-${randomUUID()}`): Client {
  const zaqar = zaqarClient(base, { project, timeoutMs: 15_000 })
  return {
    project,
    req: (method, path, opts = {}) =>
      zaqar.req(method, path, { ...opts, headers: { ...opts.headers, ...(opts.admin && { 'X-Auth-Token': ADMIN_TOKEN }) } }),
  }
}

/** Runs `fn` over `items` with at most `n` in flight. */
export async function pool<T, R>(items: T[], n: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++
        out[i] = await fn(items[i]!, i)
      }
    }),
  )
  return out
}

/**
 * The worker pids of a supervisor, by pool: the child listening on `<dataDir>/run/<pool>-<i>.sock`
 * (from /proc/net/unix and each child's fds — a worker made from a spare keeps the spare's
 * command line and environment, so neither tells its pool).
 */
export async function poolWorkerPids(supervisorPid: number, dataDir: string): Promise<Map<string, number[]>> {
  const run = `${dataDir}/run/`
  const inodes = new Map<string, string>()
  for (const line of (await readFile('/proc/net/unix', 'utf8')).split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/)
    const path = cols[7]
    if (path?.startsWith(run) && path.endsWith('.sock')) inodes.set(cols[6]!, path.slice(run.length, -'.sock'.length))
  }
  const byPool = new Map<string, number[]>()
  for (const kid of await childProcesses(supervisorPid)) {
    let fds: string[] = []
    try {
      fds = await readdir(`/proc/${kid.pid}/fd`)
    } catch {
      continue
    }
    for (const fd of fds) {
      const link = await readlink(`/proc/${kid.pid}/fd/${fd}`).catch(() => '')
      const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1]
      const sock = inode === undefined ? undefined : inodes.get(inode)
      if (sock === undefined) continue
      const pool = sock.slice(0, sock.lastIndexOf('-'))
      byPool.set(pool, [...new Set([...(byPool.get(pool) ?? []), kid.pid])])
    }
  }
  return byPool
}

/** A direct ioredis client on `url` (db optional), closed in teardown. */
export function redisClient(t: Teardown, port: number, db = 0): Redis {
  const r = new Redis({ host: '127.0.0.1', port, db, lazyConnect: false, maxRetriesPerRequest: 1 })
  t.teardown(() => r.quit().catch(() => r.disconnect()))
  return r
}

/** Every (project/queue) that has a message hash (`missive:m:…`) in this Redis, as `project/queue`. */
export async function queuesWithMessages(r: Redis): Promise<Set<string>> {
  const out = new Set<string>()
  let cursor = '0'
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', 'missive:m:*', 'COUNT', 1000)
    cursor = next
    for (const k of keys) {
      const tag = k.slice(k.indexOf('{') + 1, k.lastIndexOf('}'))
      const ref = refOfTag(tag)
      out.add(`${ref.project}/${ref.queue}`)
    }
  } while (cursor !== '0')
  return out
}
