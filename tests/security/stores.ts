/**
 * The security suite runs its cases on both stores, through the whole service (supervisor →
 * proxy → worker, RPC hop included): the embedded SQLite store and a Redis pool on a real
 * redis-server.
 */
import type { Test } from 'tap'
import { startMissive, startRedis, type MissiveProcess, type StartMissiveOptions } from '../helpers/index.js'

export type Store = 'sqlite' | 'redis'

export const STORES: readonly Store[] = ['sqlite', 'redis']

/** Starts Missive with its default pool on `store`; everything is stopped in `t`'s teardown. */
export async function startOn(t: Test, store: Store, opts: StartMissiveOptions = {}): Promise<MissiveProcess> {
  if (store === 'sqlite') return startMissive(t, opts)
  const redis = await startRedis(t, { appendfsync: 'always' })
  // A worker process, so the RPC hop is in the path whatever "auto" would choose on this host.
  return startMissive(t, { ...opts, env: { MISSIVE_WORKERS: '1', ...opts.env, MISSIVE_DEFAULT_POOL: `${redis.url}?durability=durable` } })
}

/** Runs `fn` as one subtest per store, each against its own Missive. */
export async function onBothStores(
  t: Test,
  name: string,
  fn: (t: Test, m: MissiveProcess, store: Store) => Promise<void>,
  opts: StartMissiveOptions = {},
): Promise<void> {
  for (const store of STORES) {
    await t.test(`${name} (${store})`, async (t) => {
      const m = await startOn(t, store, opts)
      await fn(t, m, store)
    })
  }
}
