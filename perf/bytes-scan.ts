/**
 * What the byte quota per project costs the background backlog scan (docs/limits.md, "Stored
 * bytes per project"): the time of one full pass over `--queues` queues of `--messages` messages
 * (~1 KB bodies) each, with the scan reading stats only and with stats and stored bytes, in this
 * process (the scan's pacing included: that time is the overshoot window), on the embedded
 * SQLite store and, with `--redis redis://…`, on a Redis pool.
 *
 *   npm run build && npx tsx perf/bytes-scan.ts [--queues 1000] [--messages 10] [--redis redis://127.0.0.1:6379/0]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { openCatalog } from '../catalog/index.js'
import { BacklogScanner } from '../proxy/backlog.js'
import { StoredBytes } from '../proxy/limits/stored-bytes.js'
import { PooledDriver } from '../proxy/pooled-driver.js'
import { PoolSet } from '../proxy/pool-set.js'
import { createLogger } from '../shared/log.js'
import { openDriver } from '../worker/storage/index.js'

const { values } = parseArgs({ options: { queues: { type: 'string' }, messages: { type: 'string' }, redis: { type: 'string' } } })
const queues = Number(values.queues ?? 1000)
const perQueue = Number(values.messages ?? 10)
const body = JSON.stringify('x'.repeat(1000))

async function measure(store: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'missive-bytes-scan-'))
  const log = createLogger('bench', 'silent')
  const driver = await openDriver(store, { dataDir: dir, durability: 'fast' })
  const catalog = await openCatalog(`sqlite:${join(dir, 'catalog.sqlite')}`, { dataDir: dir })
  await catalog.putPool({ name: 'default', uri: store, weight: 1, flavor: null, options: {} })
  const pools = new PoolSet({ catalog, connector: { key: () => '', open: () => [driver], close: () => {} }, defaultPool: 'default', pollMs: 0 })
  await pools.refresh()
  const storage = new PooledDriver({ pools, log })
  try {
    const msgs = Array.from({ length: perQueue }, () => ({ body }))
    for (let i = 0; i < queues; i++) {
      await storage.postMessages({ project: `p${i % 10}`, queue: `q${i}` }, msgs, { clientId: 'bench', defaultTtl: 3600, postBytes: 0, queuePolicy: true })
    }
    for (const bytes of [false, true]) {
      const scanner = new BacklogScanner(pools, log, { cycleMs: 50 })
      const sb = new StoredBytes()
      sb.wanted = bytes
      scanner.storedBytes = sb
      const ends: number[] = []
      scanner.start()
      // Three passes; each after the first begins 20 ms (the least pause) after the last ended.
      while (scanner.passes < 3) {
        const n = scanner.passes
        while (scanner.passes === n) await new Promise((r) => setTimeout(r, 1))
        ends.push(performance.now())
      }
      scanner.stop()
      const pass = (ends[2]! - ends[0]!) / 2 - 20
      const total = bytes ? [...Array(10).keys()].reduce((s, p) => s + sb.scanned(`p${p}`), 0) : 0
      console.log(`${store.split(':')[0]} ${queues} queues × ${perQueue} msgs, ${bytes ? 'stats + bytes' : 'stats only  '}: pass ${pass.toFixed(0)} ms${bytes ? `, ${(total / 1e6).toFixed(1)} MB counted` : ''}`)
    }
  } finally {
    pools.close()
    await catalog.close()
    await driver.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

await measure('sqlite:')
if (values.redis !== undefined) await measure(values.redis)
