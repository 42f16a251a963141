/**
 * kill -9 during a live migration (issue 13, "Crash-safe and restartable"): each process — the
 * proxy (which runs the migration), the source pool's worker, the target pool's worker, the
 * supervisor, the source's and the target's redis-server — is killed at each point of a
 * migration: before the copy, mid-copy, at the switch, after it. Then it comes back (the
 * supervisor restarts proxy and workers; the test restarts a supervisor or a redis-server on the
 * same data), the migration resumes or rolls back by itself, and the checker
 * (tests/migration/checker.ts) finds nothing lost, duplicated or resurrected in what a producer
 * and a consumer did on the queue throughout.
 *
 * Missive's processes are killed on a durable SQLite cluster (pools `default` and `s2`,
 * synchronous=FULL), the redis-servers on a durable Redis one (pools `r1`, `r2` on servers with
 * `appendfsync always`, `durability=durable`). Each cluster serves all its cases, each on its own
 * queue, moving it to whichever pool it is not on. Points are reached by watching the
 * migration through the admin API (state, messages copied), never by sleeping; the copy is rate
 * limited so that "mid-copy" lasts long enough to be seen. The two halves are two test files
 * (kill-processes.test.ts, kill-redis.test.ts), so tap runs them side by side.
 */
import type { Test } from 'tap'
import type { ZaqarClient } from '../helpers/http.js'
import { waitFor } from '../helpers/index.js'
import { describe, type Stamp } from './checker.js'
import { getMigration, migrationEnded, poolsReachable, startCluster, type Cluster, type KillRole, type MigrationView, type Store } from './harness.js'
import { DEFAULT_TRAFFIC, Traffic } from './traffic.js'

/** Killed on the SQLite cluster: every Missive process. */
export const PROCESSES: KillRole[] = ['proxy', 'source-worker', 'target-worker', 'supervisor']
/** Killed on the Redis cluster: each redis-server. */
export const SERVERS: KillRole[] = ['source-redis', 'target-redis']
const POINTS = ['before the copy', 'mid-copy', 'at the switch', 'after the switch'] as const
type Point = (typeof POINTS)[number]

/**
 * Messages in each queue before its migration starts; the copy moves them at `RATE` per second
 * in batches of `BATCH` (config `migration.batch`), so its progress shows in steps.
 */
const PREFILL = 400
const RATE = 250
const BATCH = 64

/** Starts moving `queue` to the pool it is not on; its source and target. */
async function migrateAway(c: Cluster, project: string, queue: string): Promise<{ id: string; from: string; to: string }> {
  const refusals: string[] = []
  for (const [from, to] of [
    [c.from, c.to],
    [c.to, c.from],
  ]) {
    const r = await c.admin('POST', '/v2/admin/migrations', { project, queue, to_pool: to, rate: RATE })
    if (r.status === 202) return { id: String(r.json.id), from, to }
    if (r.status !== 409) throw new Error(`starting the migration: ${r.status} ${r.text}`)
    refusals.push(`${from} → ${to}: ${r.text}`)
  }
  throw new Error(`both directions refused: ${refusals.join('; ')}`)
}

/** Waits for `point` of migration `id`; the migration as seen then. */
async function reach(c: Cluster, id: string, point: Point): Promise<MigrationView> {
  const seen = (pred: (m: MigrationView) => boolean) =>
    waitFor(
      async () => {
        const m = await getMigration(c, id)
        return pred(m) ? m : undefined
      },
      { timeoutMs: 60_000, intervalMs: 2, what: `${point} of migration ${id}` },
    ) as Promise<MigrationView>
  switch (point) {
    case 'before the copy':
      return getMigration(c, id)
    case 'mid-copy':
      return seen((m) => m.state !== 'copying' || m.messages_copied >= PREFILL / 4)
    case 'at the switch':
      return seen((m) => m.state !== 'copying')
    case 'after the switch':
      return seen((m) => m.state === 'cleaning' || m.state === 'done' || m.state === 'cancelled' || m.state === 'failed')
  }
}

async function killCase(t: Test, c: Cluster, client: ZaqarClient, role: KillRole, point: Point): Promise<void> {
  const queue = `k-${role}-${point.replaceAll(' ', '-')}`
  // The previous case killed a process: its restart (a worker the supervisor brings back on its
  // own schedule) must be served again before this case's queue is made and moved.
  await poolsReachable((method, path) => c.admin(method, path), [c.from, c.to])
  t.equal((await client.req('PUT', `/v2/queues/${queue}`, { body: { color: 'green' } })).status, 201)
  const traffic = new Traffic([client], queue, { ...DEFAULT_TRAFFIC, producers: 1, consumers: 1, postGapMs: 10 })
  let filled = true
  for (let s = 0; s < PREFILL; s += 20) filled &&= await traffic.postBatch(client, Array.from({ length: 20 }, (_, i): Stamp => ({ p: 99, s: s + i })))
  t.ok(filled, `${PREFILL} messages in the queue`)
  traffic.start(t)
  const { id, from, to } = await migrateAway(c, client.project, queue)
  const at = await reach(c, id, point)
  const pid = await c.kill9(role, { from, to })
  const m = await migrationEnded(c, id, 90_000)
  t.comment(`${role} (pid ${pid}) killed ${point} (migration ${at.state}, ${at.messages_copied} copied): it ended ${m.state}${m.error ? ` (${m.error})` : ''}`)
  t.ok(m.state === 'done' || m.state === 'cancelled' || m.state === 'failed', 'the migration resumed or rolled back by itself')

  // The queue serves again wherever it ended up.
  const posted = traffic.posted
  await waitFor(() => traffic.posted > posted + 3, { timeoutMs: 60_000, what: 'posts after the recovery' })
  await traffic.stop()
  traffic.history.finish(await traffic.listAll(client))
  const verdict = traffic.history.check()
  t.comment(`posted ${verdict.posted} (+${verdict.uncertain} unanswered), delivered ${verdict.delivered}, deleted ${verdict.deleted}, left ${verdict.remaining}; statuses ${JSON.stringify(Object.fromEntries(traffic.statuses))}`)
  t.same(describe(verdict.violations), [], 'nothing lost, duplicated, resurrected, invented or out of order')
  // While the proxy is down requests cannot connect; otherwise a client only ever sees proper 503s.
  const down = role === 'proxy' || role === 'supervisor'
  t.same(
    traffic.problems.filter((p) => !(down && /TypeError|TimeoutError|AbortError/.test(p))).slice(0, 10),
    [],
    'clients saw successes and proper 503s only',
  )
  // Leave the stores small for the next case.
  t.equal((await client.req('DELETE', `/v2/queues/${queue}`)).status, 204)
}

/** One durable cluster whose two pools both take queues; each case moves its queue to the other. */
export async function matrix(t: Test, store: Store, roles: KillRole[]): Promise<void> {
  // A short lease: a killed runner's migration is taken over within 1.5 s; a short drain: a
  // proxy orphaned by its supervisor's death lets go within half a second.
  const c = await startCluster(t, { from: store, to: store, durability: 'durable', config: { drainTimeoutMs: 500, migration: { batch: BATCH, leaseMs: 1500 } } })
  t.equal((await c.admin('PATCH', `/v2/pools/${c.to}`, { weight: 1 })).status, 200)
  const client = c.client()
  for (const role of roles) for (const point of POINTS) await t.test(`${role} killed ${point}`, (t) => killCase(t, c, client, role, point))
}
