/** The catalog contract on the Redis store, against a real redis-server; plus Redis-only cases. */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { openCatalog } from '../../catalog/index.js'
import { parseRedisCatalogUri, RedisCatalog } from '../../catalog/stores/redis.js'
import { startRedis, tempDir } from '../helpers/index.js'
import { catalogContract } from './contract.js'

t.test('RedisCatalog contract', async (t) => {
  const server = await startRedis(t)
  catalogContract(t, async () => {
    // A fresh prefix per test: an empty catalog on the shared server.
    const prefix = `t-${randomUUID()}:`
    return { open: () => RedisCatalog.open({ host: '127.0.0.1', port: server.port, prefix }) }
  })
})

t.test('openCatalog understands redis URIs', async (t) => {
  const server = await startRedis(t)
  const a = await openCatalog(`${server.url}/0?prefix=x:`)
  const b = await openCatalog(`${server.url}?prefix=x:`)
  const c = await openCatalog(`${server.url}/1?prefix=x:`)
  t.teardown(async () => {
    for (const s of [a, b, c]) await s.close()
  })
  await a.place({ project: 'p', queue: 'q' }, 'a')
  t.equal(await b.getPlacement({ project: 'p', queue: 'q' }), 'a', 'same server, same db, same prefix')
  t.equal(await c.getPlacement({ project: 'p', queue: 'q' }), null, 'another db')
  t.same(parseRedisCatalogUri('redis://u:s%40cret@h:7000/2?prefix=m:&timeout=300'), {
    host: 'h',
    port: 7000,
    db: 2,
    username: 'u',
    password: 's@cret',
    prefix: 'm:',
    timeoutMs: 300,
  })
  t.throws(() => parseRedisCatalogUri('redis://h/x'), /database must be a number/)
  t.throws(() => parseRedisCatalogUri('redis://h?nope=1'), /unknown or invalid option "nope"/)
})

t.test('a Redis catalog on a Unix socket: redis:[password@]/path?dbid=N', async (t) => {
  const sock = `${await tempDir(t, 'missive-cat-unix-')}/redis.sock`
  await startRedis(t, { args: ['--unixsocket', sock, '--unixsocketperm', '700'] })
  const a = await openCatalog(`redis:${sock}?prefix=u:`)
  const b = await openCatalog(`redis:${sock}?dbid=0&prefix=u:`)
  const c = await openCatalog(`redis:${sock}?dbid=1&prefix=u:`)
  t.teardown(async () => {
    for (const s of [a, b, c]) await s.close()
  })
  await a.place({ project: 'p', queue: 'q' }, 'a')
  t.equal(await b.getPlacement({ project: 'p', queue: 'q' }), 'a', 'same socket, same db')
  t.equal(await c.getPlacement({ project: 'p', queue: 'q' }), null, 'another db')
  t.same(parseRedisCatalogUri('redis:s3cret@/run/redis.sock?dbid=2&timeout=300'), { host: '', port: 0, path: '/run/redis.sock', password: 's3cret', db: 2, timeoutMs: 300 })
  t.throws(() => parseRedisCatalogUri('redis:run/redis.sock'), /absolute path/)
  t.throws(() => parseRedisCatalogUri('redis:/run/redis.sock?db=1'), /unknown or invalid option "db"/)
})

t.test('an unreachable Redis catalog: open fails with unavailable; a lost server gives 503s, then recovers', async (t) => {
  const server = await startRedis(t)
  const port = server.port
  await t.rejects(RedisCatalog.open({ host: '127.0.0.1', port: 1, timeoutMs: 500 }), { code: 'unavailable' })
  const store = await RedisCatalog.open({ host: '127.0.0.1', port, prefix: 'lost:' })
  t.teardown(() => store.close())
  await store.putPool({ name: 'a', uri: 'redis://x', weight: 1, flavor: null, options: {} })
  await server.kill9()
  await t.rejects(store.version(), { code: 'unavailable', status: 503 })
  const again = await startRedis(t, { port, dir: server.dir })
  t.ok(again.pid)
  const { waitFor } = await import('../helpers/index.js')
  await waitFor(async () => (await store.version()) === 0, { what: 'the store reconnecting' })
  t.pass('reconnected (the restarted server kept nothing: persistence was off)')
})
