/** The storage contract against the embedded SQLite driver (durable mode, temp directory). */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { manualClock } from '../../shared/clock.js'
import { SqliteDriver } from '../../worker/storage/sqlite/driver.js'
import { runContract } from './suite.js'

await runContract(t, 'sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'missive-contract-'))
  const clock = manualClock()
  const driver = new SqliteDriver({ path: join(dir, 'pool.sqlite'), durability: 'durable', clock })
  return {
    driver,
    clock,
    close: async () => {
      await driver.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
})
