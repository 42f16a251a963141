import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { catalogPath, defaultCatalogUri, openCatalog } from '../../catalog/index.js'
import { SqliteCatalog } from '../../catalog/stores/sqlite.js'
import { tempDir, waitFor } from '../helpers/index.js'
import { catalogContract } from './contract.js'

const run = promisify(execFile)

t.test('SqliteCatalog contract', async (t) => {
  catalogContract(t, async (t) => {
    const dir = await tempDir(t)
    const path = join(dir, 'catalog.sqlite')
    return { open: async () => new SqliteCatalog(path) }
  })
})

t.test('openCatalog understands sqlite URIs and paths', async (t) => {
  const dir = await tempDir(t)
  const stores = [
    await openCatalog(defaultCatalogUri(dir)),
    await openCatalog(`sqlite://${catalogPath(dir)}`),
    await openCatalog('catalog.sqlite', { dataDir: dir }),
    await openCatalog('sqlite:', { dataDir: dir }),
  ]
  t.teardown(async () => {
    for (const s of stores) await s.close()
  })
  await stores[0].place({ project: 'p', queue: 'q' }, 'a')
  for (const s of stores) t.equal(await s.getPlacement({ project: 'p', queue: 'q' }), 'a', 'same file')
  await t.rejects(openCatalog('mongodb://localhost'), /unsupported catalog store "mongodb:"/)
})

t.test('places racing from several processes agree', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'catalog.sqlite')
  new SqliteCatalog(path).close()
  const fixture = fileURLToPath(new URL('./fixtures/placer.ts', import.meta.url))
  const n = 2000
  // A barrier: each placer says it is ready; once all are, a byte on each one's stdin starts them together.
  const ready = (pool: string): string => join(dir, `ready.${pool}`)
  const pools = ['a', 'b', 'c']
  const placers = pools.map((pool) => run(process.execPath, ['--import', 'tsx', fixture, path, 'p', pool, String(n), ready(pool)]))
  const running = Promise.all(placers)
  running.catch(() => {}) // awaited below; a placer that dies fails the test there
  await waitFor(() => pools.every((pool) => existsSync(ready(pool))), { timeoutMs: 60_000, what: 'every placer ready' })
  for (const p of placers) p.child.stdin?.end('go')
  const outs = await running
  const got = outs.map((o) => JSON.parse(o.stdout) as string[])
  const store = new SqliteCatalog(path)
  t.teardown(() => store.close())
  let agree = 0
  const winners = new Set<string>()
  for (let i = 0; i < n; i++) {
    const final = await store.getPlacement({ project: 'p', queue: `q${i}` })
    if (final !== null && got.every((g) => g[i] === final)) agree++
    if (final) winners.add(final)
  }
  t.equal(agree, n, 'every process was told the one pool that holds each queue')
  t.comment(`winning pools: ${[...winners].join(', ')}`)
})

t.test('a closed catalog refuses calls', async (t) => {
  const dir = await tempDir(t)
  const store = new SqliteCatalog(join(dir, 'c.sqlite'))
  await store.close()
  await store.close()
  await t.rejects(store.version(), { code: 'unavailable' })
})
