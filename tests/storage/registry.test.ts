/**
 * The store registry (shared/storage/registry.ts): what is known of a pool URI without
 * connecting, and the lazy opening of drivers (worker/storage/index.ts).
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdirSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import {
  availableStoreOf,
  poolCapabilities,
  redactUri,
  STORES,
  storeOf,
  StoreUriError,
} from '../../shared/storage/registry.js'
import { tempDir } from '../helpers/index.js'

const ROOT = join(import.meta.dirname, '..', '..')
const ctx = { dataDir: '/srv/missive', durability: 'durable' as const }

t.test('each URI form finds its store', async (t) => {
  t.equal(storeOf('sqlite:')?.name, 'sqlite')
  t.equal(storeOf('sqlite:pools/a.sqlite')?.name, 'sqlite')
  for (const uri of ['redis://h', 'REDIS://h:1/2', 'rediss://h', 'redis+sentinel://a,b/m', 'redis+cluster://a', 'redis:/tmp/sock']) {
    t.equal(storeOf(uri)?.name, 'redis', uri)
  }
  t.equal(storeOf('mongodb://h/db')?.name, 'mongodb')
  t.equal(storeOf('mongodb+srv://h/db')?.name, 'mongodb')
  t.equal(storeOf('postgres://h'), undefined)
  t.same(STORES.map((s) => s.name).sort(), ['mongodb', 'redis', 'sqlite'])
})

t.test('a store without a driver, or an unknown scheme, is refused with a reason', async (t) => {
  t.throws(() => availableStoreOf('mongodb://u:pw@h/db'), StoreUriError)
  t.throws(() => availableStoreOf('mongodb://h/db'), { message: /no MongoDB store in this build/ })
  t.throws(() => availableStoreOf('postgres://u:pw@h'), { message: /Unsupported storage URI "postgres:"/ })
  t.equal(availableStoreOf('redis://h').name, 'redis')
})

t.test('identity: one store, however its URI is written', async (t) => {
  const redis = (uri: string): string => availableStoreOf(uri).identity(uri, ctx)
  t.equal(redis('redis://localhost'), 'redis://127.0.0.1:6379/0')
  t.equal(redis('redis://LOCALHOST:6379/0?durability=fast'), 'redis://127.0.0.1:6379/0', 'options do not change the store')
  t.equal(redis('redis://:pw@h:7000/3'), 'redis://h:7000/3', 'credentials do not either')
  t.equal(redis('redis://h:7000/zaqar?dbid=3'), 'redis://h:7000/3', "Zaqar's dbid names the database")
  t.not(redis('redis://h:7000/3'), redis('redis://h:7000/4'), 'another database is another store')
  t.throws(() => redis('redis://h?nope=1'), { message: /Unknown Redis pool option "nope"/ })

  const dir = await tempDir(t, 'missive-registry-')
  mkdirSync(join(dir, 'real'))
  symlinkSync(join(dir, 'real'), join(dir, 'link'))
  const sqlite = (uri: string): string => availableStoreOf(uri).identity(uri, { ...ctx, dataDir: dir })
  t.equal(sqlite('sqlite:link/p.sqlite'), sqlite(`sqlite:${join(dir, 'real', 'p.sqlite')}`), 'symlinks resolved')
  t.equal(sqlite('sqlite:'), sqlite('sqlite:pool-default.sqlite'), 'the default file')
  t.equal(sqlite('sqlite::memory:'), 'sqlite::memory:')
})

t.test('one redaction, and capabilities by store', async (t) => {
  t.equal(redactUri('redis://u:secret@h:1/0'), 'redis://***@h:1/0')
  t.equal(redactUri('redis://secret@h'), 'redis://***@h', "Zaqar's password-only user-info")
  t.equal(redactUri('cannot connect to redis://:pw@h: refused'), 'cannot connect to redis://***@h: refused', 'inside a sentence')
  t.equal(redactUri('cannot connect to redis:pw@/run/redis.sock: refused'), 'cannot connect to redis:***@/run/redis.sock: refused', "Zaqar's Unix-socket form, inside a sentence")
  t.equal(redactUri('redis:/run/redis.sock?dbid=1'), 'redis:/run/redis.sock?dbid=1', 'no password, nothing to mask')
  t.equal(redactUri('sqlite:pools/a.sqlite'), 'sqlite:pools/a.sqlite')
  t.same(poolCapabilities('redis://h'), ['FIFO', 'CLAIMS', 'AOD', 'HIGH_THROUGHPUT'])
  t.same(poolCapabilities('sqlite:'), ['FIFO', 'CLAIMS', 'DURABILITY', 'AOD'])
  t.same(poolCapabilities('nope:'), [])
})

t.test('opening a store loads its driver only when a pool of that kind is opened', async (t) => {
  // A child process: which native addons and clients a module graph pulls in is process-wide.
  const probe = (code: string): { sqlite: boolean; ioredis: boolean } => {
    const script = `(async () => { ${code}
      const loaded = Object.keys(require.cache)
      console.log(JSON.stringify({ sqlite: loaded.some((f) => f.includes('better-sqlite3')), ioredis: loaded.some((f) => f.includes('/ioredis/')) }))
    })().catch((e) => { console.error(e); process.exit(1) })`
    const env = { ...process.env }
    delete env.NODE_OPTIONS
    const r = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, env, encoding: 'utf8' })
    t.equal(r.status, 0, r.stderr)
    return JSON.parse(r.stdout) as { sqlite: boolean; ioredis: boolean }
  }
  const dist = (p: string): string => JSON.stringify(join(ROOT, 'dist', p))
  t.same(probe(`await import(${dist('worker/storage/index.js')}); await import(${dist('proxy/api/pools.js')}); await import(${dist('catalog/index.js')})`),
    { sqlite: false, ioredis: false }, 'the opener, the admin API and the catalog module load no driver by themselves')
  const dir = await tempDir(t, 'missive-registry-')
  t.same(probe(`const { openDriver } = await import(${dist('worker/storage/index.js')}); const d = await openDriver('sqlite:', { dataDir: ${JSON.stringify(dir)}, durability: 'fast' }); await d.close()`),
    { sqlite: true, ioredis: false }, 'a SQLite pool loads the SQLite driver only')
})
