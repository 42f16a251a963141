/**
 * How long a queue's stats hold the embedded store's worker (docs/benchmarks.md, "The fourth
 * wave"): fills one queue of the SQLite driver (in this process, durability fast) with
 * `--messages`, then times `stats()` `--rounds` times while a setImmediate loop measures the
 * longest the event loop went without a turn — what every other request of that worker would
 * have waited.
 *
 *   npm run build && node dist/perf/sqlite-stats.js [--messages 200000] [--rounds 5]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { SqliteDriver } from '../worker/storage/sqlite/driver.js'

const { values } = parseArgs({ options: { messages: { type: 'string' }, rounds: { type: 'string' } } })
const total = Number(values.messages ?? 200_000)
const rounds = Number(values.rounds ?? 5)
const dir = mkdtempSync(join(tmpdir(), 'missive-stats-'))
const driver = new SqliteDriver({ path: join(dir, 'stats.sqlite'), durability: 'fast', gcIntervalMs: 0 })
try {
  const ref = { project: 'p', queue: 'q' }
  const opts = { clientId: '3f0c1b9e-6d4a-4f2e-8a7b-5c9d0e1f2a3b', defaultTtl: 3600, postBytes: 0, queuePolicy: false }
  const body = JSON.stringify({ pad: 'x'.repeat(180) })
  for (let n = 0; n < total; n += 128) await driver.postMessages(ref, Array.from({ length: Math.min(128, total - n) }, () => ({ body })), opts)
  for (let r = 0; r < rounds; r++) {
    let last = performance.now()
    let worst = 0
    let spinning = true
    const turn = (): void => {
      const now = performance.now()
      worst = Math.max(worst, now - last)
      last = now
      if (spinning) setImmediate(turn)
    }
    setImmediate(turn)
    await new Promise((resolve) => setTimeout(resolve, 20))
    const t0 = performance.now()
    const stats = await driver.stats(ref)
    const took = performance.now() - t0
    spinning = false
    await new Promise((resolve) => setTimeout(resolve, 5))
    process.stdout.write(`${JSON.stringify({ messages: stats.total, statsMs: Math.round(took * 10) / 10, longestStallMs: Math.round(worst * 10) / 10 })}\n`)
  }
} finally {
  await driver.close()
  rmSync(dir, { recursive: true, force: true })
}
