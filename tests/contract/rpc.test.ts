/**
 * The storage contract through the RPC path: the proxy's `RpcDriver` → length-prefixed msgpack
 * frames over a real Unix socket → `serveRpc` → the SQLite driver. The server runs in this
 * process so the suite's manual clock still drives the driver; tests/rpc covers a worker in its
 * own process being killed.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { RpcDriver } from '../../proxy/rpc-client.js'
import { manualClock } from '../../shared/clock.js'
import { createLogger } from '../../shared/log.js'
import { serveRpc } from '../../worker/rpc-server.js'
import { SqliteDriver } from '../../worker/storage/sqlite/driver.js'
import { runContract } from './suite.js'

await runContract(t, 'sqlite over rpc', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'missive-contract-rpc-'))
  const clock = manualClock()
  const sqlite = new SqliteDriver({ path: join(dir, 'pool.sqlite'), durability: 'durable', clock })
  const log = createLogger('test', 'silent')
  const socket = join(dir, 'worker.sock')
  const server = await serveRpc(sqlite, socket, log)
  const driver = new RpcDriver(socket, { timeoutMs: 10_000, log })
  await driver.ready(5000)
  return {
    driver,
    clock,
    close: async () => {
      await driver.close()
      await server.close()
      await sqlite.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
})
