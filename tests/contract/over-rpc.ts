/**
 * Serves a driver over the real RPC path in this process — `serveRpc` on a Unix socket, the
 * proxy's `RpcDriver` in front — so the contract suite's manual clock still drives the driver.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RpcDriver } from '../../proxy/rpc-client.js'
import { createLogger } from '../../shared/log.js'
import { serveRpc } from '../../worker/rpc-server.js'
import type { DataDriver } from '../../shared/storage/contract.js'
import type { ContractEnv, ManualClock } from './suite.js'

export async function overRpc(served: DataDriver, clock: ManualClock): Promise<ContractEnv> {
  const dir = mkdtempSync(join(tmpdir(), 'missive-contract-rpc-'))
  const log = createLogger('test', 'silent')
  const socket = join(dir, 'worker.sock')
  const server = await serveRpc(served, socket, log)
  const driver = new RpcDriver(socket, { timeoutMs: 10_000, log })
  await driver.ready(5000)
  return {
    driver,
    clock,
    close: async () => {
      await driver.close()
      await server.close()
      await served.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
