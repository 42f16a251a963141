/**
 * The storage contract through the RPC path: the proxy's `RpcDriver` → length-prefixed msgpack
 * frames over a real Unix socket → `serveRpc` → the SQLite driver. tests/rpc covers a worker in
 * its own process being killed.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { manualClock } from '../../shared/clock.js'
import { SqliteDriver } from '../../worker/storage/sqlite/driver.js'
import { overRpc } from './over-rpc.js'
import { runContract } from './suite.js'

await runContract(t, 'sqlite over rpc', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'missive-contract-sqlite-'))
  const clock = manualClock()
  const env = await overRpc(new SqliteDriver({ path: join(dir, 'pool.sqlite'), durability: 'durable', clock }), clock)
  return { ...env, close: () => env.close().then(() => rmSync(dir, { recursive: true, force: true })) }
})
