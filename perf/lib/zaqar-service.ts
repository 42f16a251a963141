/**
 * The real OpenStack Zaqar 15 (Debian's python3-zaqar) as the bench's anchor, deployed the way
 * production deploys it on one machine: Zaqar's WSGI app under gunicorn (gthread, 2 workers × 2
 * threads, keep-alive) with the Redis message store on its own redis-server (the persistence the
 * caller asks for) and the queue catalogue in SQLite (sqlalchemy management store, pooling off, auth off).
 *
 * Everything runs on free loopback ports with its files in a directory of the caller's; gunicorn
 * runs in its own process group, registered with procs.ts, and is stopped by its pid (SIGTERM to
 * the arbiter, then SIGKILL to the group). perf/zaqar/zaqar_wsgi.py builds the app and says
 * which Debian breakages it works around. docs/benchmarks.md, "Zaqar in the same run".
 */
import { spawn, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { HttpConnection } from './http-client.js'
import { awaitHttp, capture, childProcesses, cleanEnv, freePort, hasBinary, ROOT, startRedis, StartError, stopChild, track, type MissiveService, type RedisService } from './procs.js'

const PYTHON = '/usr/bin/python3'
const WSGI_DIR = join(ROOT, 'perf/zaqar')

/** Null when Zaqar can run here, else why not (what to install). */
export function zaqarMissing(): string | null {
  const need: string[] = []
  if (!hasBinary('gunicorn')) need.push('gunicorn')
  if (!hasBinary('redis-server')) need.push('redis-server')
  const py = spawnSync(PYTHON, ['-c', 'import zaqar.bootstrap, redis, sqlalchemy'], { stdio: 'ignore' })
  if (py.status !== 0) need.push('python3-zaqar python3-redis')
  return need.length ? `not installed: apt-get install ${need.join(' ')}` : null
}

export interface ZaqarService {
  /** The gunicorn arbiter ("proxy" in CPU accounting) and its workers. */
  svc: MissiveService
  redis: RedisService
  version: string
}

/** Starts Redis, writes zaqar.conf and the catalogue schema into `dir`, starts gunicorn. */
export async function startZaqar(opts: {
  dir: string
  workers?: number
  threads?: number
  /**
   * Zaqar's Redis persistence, as procs.ts `startRedis` (the configuration we ship for that
   * mode); none when absent. The bench gives it the same as the Missive Redis it compares with.
   */
  appendfsync?: 'always' | 'everysec'
  timeoutMs?: number
}): Promise<ZaqarService> {
  const missing = zaqarMissing()
  if (missing) throw new StartError(missing)
  const workers = opts.workers ?? 2
  const threads = opts.threads ?? 2
  const redis = await startRedis({ dir: opts.dir, appendfsync: opts.appendfsync })
  try {
    const port = await freePort()
    const conf = join(opts.dir, 'zaqar.conf')
    const policy = join(opts.dir, 'policy.yaml')
    const catalogue = `sqlite:///${join(opts.dir, 'catalogue.sqlite')}`
    writeFileSync(policy, '{}\n')
    writeFileSync(
      conf,
      [
        '[DEFAULT]',
        'debug = False',
        '# no Keystone: Client-ID and X-Project-ID headers, as Missive without auth',
        'auth_strategy =',
        'pooling = False',
        'unreliable = True',
        '',
        '[drivers]',
        'transport = wsgi',
        'message_store = redis',
        'management_store = sqlalchemy',
        '',
        '[drivers:message_store:redis]',
        `uri = ${redis.url}?dbid=0`,
        '',
        '[drivers:management_store:sqlalchemy]',
        `uri = ${catalogue}`,
        '',
        '[signed_url]',
        'secret_key = missive-bench',
        '',
        '[oslo_policy]',
        `policy_file = ${policy}`,
        '',
      ].join('\n'),
    )
    // The sqlalchemy store does not create its tables, and Debian's migrations
    // (zaqar-sql-db-manage) fail on SQLite: create them from zaqar/storage/sqlalchemy/tables.py.
    const schema = spawnSync(PYTHON, ['-c', 'import sys, sqlalchemy as sa; from zaqar.storage.sqlalchemy import tables; tables.metadata.create_all(sa.create_engine(sys.argv[1]))', catalogue], { encoding: 'utf8' })
    if (schema.status !== 0) throw new StartError(`Zaqar's catalogue schema: ${schema.stderr.trim().split('\n').pop() ?? ''}`)
    const args = [
      '--chdir', opts.dir, // gunicorn puts its cwd first on sys.path: keep the caller's files out of it
      '--bind', `127.0.0.1:${port}`,
      '--workers', String(workers),
      '--worker-class', 'gthread',
      '--threads', String(threads),
      '--keep-alive', '5',
      '--backlog', '1024',
      '--timeout', '60',
      '--graceful-timeout', '5',
      '--pythonpath', WSGI_DIR,
      '--env', `MISSIVE_ZAQAR_CONFIG=${conf}`,
      'zaqar_wsgi:application',
    ]
    const child = spawn('gunicorn', args, { cwd: opts.dir, env: cleanEnv({ PYTHONDONTWRITEBYTECODE: '1' }), stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    track(child, true)
    const output = capture(child)
    const url = `http://127.0.0.1:${port}`
    const svc: MissiveService = {
      pid: child.pid!,
      port,
      url,
      output,
      roles: () => ({ proxy: [child.pid!], workers: childProcesses(child.pid!).map((k) => k.pid) }),
      stop: (timeoutMs = 10_000) => stopChild(child, timeoutMs, true),
    }
    const fail = async (why: string): Promise<never> => {
      await svc.stop(2000)
      throw new StartError(`${why}: ${output().trim().split('\n').slice(-3).join(' | ').slice(0, 600)}`)
    }
    const up = await awaitHttp({ child, url }, opts.timeoutMs ?? 60_000)
    if (up !== 'up') return await fail(up === 'exited' ? 'gunicorn exited' : 'gunicorn did not answer')
    // The first answer came from one worker: wait until every worker has loaded the app (each
    // imports Zaqar on its own, a second or two), so that no measured request waits for it.
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000)
    for (;;) {
      const pings = await Promise.all(Array.from({ length: workers * threads * 2 }, () => ping(port)))
      if (pings.every(Boolean)) break
      if (Date.now() > deadline) return await fail('not every gunicorn worker answered')
    }
    const version = spawnSync(PYTHON, ['-c', 'import zaqar.version as v; print(v.version_info.version_string())'], { encoding: 'utf8' }).stdout.trim() || 'unknown'
    return { svc, redis, version }
  } catch (err) {
    await redis.stop()
    throw err
  }
}

/** GET /v2/ping on a fresh connection: true on 204. */
async function ping(port: number): Promise<boolean> {
  const c = new HttpConnection('127.0.0.1', port, 10_000)
  try {
    const r = await c.request(`GET /v2/ping HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nClient-ID: 3f0c1b9e-6d4a-4f2e-8a7b-5c9d0e1f2a3b\r\nX-Project-ID: bench-ping`)
    return r.status === 204
  } catch {
    return false
  } finally {
    c.close()
  }
}
