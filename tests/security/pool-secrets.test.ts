// Pool secrets and pool storage confinement (issue 11: item 8 and the low item on sqlite: paths):
// passwords masked in every pool answer, the catalog's files owner-only, sqlite: pools confined to
// the data directory and never on the catalog, duplicate stores found after normalising the URI.
import { chmodSync, mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import t from 'tap'
import { SqliteCatalog } from '../../catalog/stores/sqlite.js'
import { openDriver } from '../../worker/storage/index.js'
import { startRedis, tempDir } from '../helpers/index.js'
import { startPoolHarness } from '../pools/harness.js'

t.test('pool passwords are masked in GET /v2/pools, GET /v2/pools/<name> and the PATCH answer', async (t) => {
  const redis = await startRedis(t, { appendfsync: 'everysec' })
  // Set after start: the helper's readiness PING has no password.
  const admin = new Redis(redis.port, '127.0.0.1')
  await admin.config('SET', 'requirepass', 'hunter2')
  admin.disconnect()
  const h = await startPoolHarness(t)
  const forms: [string, string, string][] = [
    ['userpass', `redis://:hunter2@127.0.0.1:${redis.port}/1`, `redis://***@127.0.0.1:${redis.port}/1`],
    // Zaqar's form: the whole user-info is the password.
    ['zaqarform', `redis://hunter2@127.0.0.1:${redis.port}?dbid=2`, `redis://***@127.0.0.1:${redis.port}?dbid=2`],
  ]
  for (const [name, uri, shown] of forms) {
    const put = await h.req('PUT', `/v2/pools/${name}`, { body: { weight: 1, uri } })
    t.equal(put.status, 201, `${name}: created (the password works)`)
    t.notMatch(put.text, /hunter2/)
    for (const path of [`/v2/pools/${name}`, `/v2/pools/${name}?detailed=true`]) {
      const got = await h.req('GET', path)
      t.equal(got.json.uri, shown, `GET ${path} masks the password`)
      t.notMatch(got.text, /hunter2/)
    }
    const patched = await h.req('PATCH', `/v2/pools/${name}`, { body: { weight: 3 } })
    t.equal(patched.status, 200)
    t.equal(patched.json.uri, shown, 'the PATCH answer masks it')
    t.notMatch(patched.text, /hunter2/)
    // The masked form sent back keeps the stored password (GET, edit, PUT round trip).
    const back = await h.req('PATCH', `/v2/pools/${name}`, { body: { uri: shown, weight: 4 } })
    t.equal(back.status, 200, 'the masked uri sent back is accepted')
    t.equal((await h.catalog.getPool(name))!.uri, uri, 'and the stored uri keeps its password')
    t.equal((await h.req('PUT', `/v2/pools/${name}`, { body: { uri: shown, weight: 5 } })).status, 201, 'PUT too')
    t.equal((await h.catalog.getPool(name))!.uri, uri)
  }
  const list = await h.req('GET', '/v2/pools?detailed=true')
  t.equal(list.status, 200)
  t.notMatch(list.text, /hunter2/, 'the listing shows no password')
  t.same(
    list.json.pools.filter((p: { name: string }) => p.name !== 'default').map((p: { uri: string }) => p.uri),
    forms.map(([, , shown]) => shown),
  )
  const wrong = await h.req('PUT', '/v2/pools/wrong', { body: { weight: 1, uri: `redis://:nothunter@127.0.0.1:${redis.port}/3` } })
  t.equal(wrong.status, 400, 'a wrong password fails the connect check')
  t.notMatch(wrong.text, /nothunter/, 'and the error masks it')
})

t.test('the catalog file and its -wal/-shm are created 0600; an older 0644 file is fixed', async (t) => {
  const dir = await tempDir(t)
  const umask = process.umask(0o022)
  t.teardown(() => process.umask(umask))
  const path = join(dir, 'catalog.sqlite')
  const catalog = new SqliteCatalog(path)
  await catalog.putPool({ name: 'p', uri: 'redis://:pw@h:1', weight: 1, flavor: null, options: {} })
  for (const f of [path, `${path}-wal`, `${path}-shm`]) t.equal(statSync(f).mode & 0o777, 0o600, `${f} is 0600`)
  await catalog.close()

  const old = join(dir, 'old.sqlite')
  writeFileSync(old, '')
  chmodSync(old, 0o644)
  const reopened = new SqliteCatalog(old)
  await reopened.putPool({ name: 'p', uri: 'sqlite:x', weight: 1, flavor: null, options: {} })
  for (const f of [old, `${old}-wal`, `${old}-shm`]) t.equal(statSync(f).mode & 0o777, 0o600, `${f} is 0600 after reopening`)
  await reopened.close()
})

t.test('sqlite: pools stay inside the data directory and off the catalog', async (t) => {
  const h = await startPoolHarness(t)
  const outside = await tempDir(t)
  mkdirSync(join(h.dir, 'pools'))
  symlinkSync(outside, join(h.dir, 'pools', 'escape'))
  const refused = [
    `sqlite:${join(outside, 'p.sqlite')}`,
    'sqlite:../p.sqlite',
    'sqlite:pools/../../p.sqlite',
    'sqlite:pools/escape/p.sqlite',
    'sqlite:catalog.sqlite',
    `sqlite:${join(h.dir, 'catalog.sqlite')}`,
    'sqlite:./pools/../catalog.sqlite-wal',
    'sqlite:catalog.sqlite-shm',
    'sqlite:/etc/passwd',
  ]
  for (const uri of refused) {
    const r = await h.req('PUT', '/v2/pools/p1', { body: { weight: 1, uri } })
    t.equal(r.status, 400, `${uri} is refused`)
    t.match(r.json, { title: String, description: /data directory|catalog's file/ }, uri)
    const patched = await h.req('PATCH', '/v2/pools/default', { body: { uri } })
    t.equal(patched.status, 400, `PATCH to ${uri} is refused`)
  }
  t.equal(await h.catalog.getPool('p1'), null, 'nothing was created')
  t.equal((await h.req('PUT', '/v2/pools/p1', { body: { weight: 1, uri: 'sqlite:pools/p1.sqlite' } })).status, 201, 'a file inside is fine')
  t.equal((await h.req('PUT', '/v2/pools/p2', { body: { weight: 1, uri: `sqlite:${join(h.dir, 'pools', 'p2.sqlite')}` } })).status, 201, 'an absolute path inside too')
})

t.test('duplicate pools are found after normalising the URI (same server, same database; same file)', async (t) => {
  const redis = await startRedis(t, { appendfsync: 'everysec' })
  const h = await startPoolHarness(t)
  const p = redis.port
  t.equal((await h.req('PUT', '/v2/pools/r0', { body: { weight: 1, uri: `redis://127.0.0.1:${p}` } })).status, 201)
  for (const same of [`redis://localhost:${p}/0`, `redis://127.0.0.1:${p}?dbid=0&socket_timeout=2`, `redis://LOCALHOST:${p}/zaqar`, `redis://127.0.0.1:${p}/0?durability=fast`]) {
    const r = await h.req('PUT', '/v2/pools/r1', { body: { weight: 1, uri: same } })
    t.equal(r.status, 409, `${same} is the same store`)
    t.same(r.json, { title: 'Resource conflict', description: 'Pool r0 already uses this uri.' })
  }
  t.equal((await h.req('PUT', '/v2/pools/r1', { body: { weight: 1, uri: `redis://127.0.0.1:${p}?dbid=1` } })).status, 201, 'another database is another store')
  t.equal((await h.req('PATCH', '/v2/pools/r1', { body: { uri: `redis://localhost:${p}/0` } })).status, 409, 'PATCH is checked too')

  t.equal((await h.req('PUT', '/v2/pools/s0', { body: { weight: 1, uri: 'sqlite:a.sqlite' } })).status, 201)
  for (const same of ['sqlite:./a.sqlite', `sqlite:${join(h.dir, 'a.sqlite')}`, 'sqlite:pools/../a.sqlite']) {
    t.equal((await h.req('PUT', '/v2/pools/s1', { body: { weight: 1, uri: same } })).status, 409, `${same} is the same file`)
  }
  t.equal((await h.req('PUT', '/v2/pools/s1', { body: { weight: 1, uri: 'sqlite:' } })).status, 409, 'sqlite: is the default pool\'s file')
})

t.test('embedded pool files (message bodies) are created 0600 too', async (t) => {
  const dir = await tempDir(t)
  const umask = process.umask(0o022)
  t.teardown(() => process.umask(umask))
  const driver = await openDriver('sqlite:pools/p.sqlite', { dataDir: dir, durability: 'durable' })
  t.teardown(() => driver.close())
  await driver.postMessages({ project: 'p', queue: 'q' }, [{ body: '"secret"' }], { clientId: 'c', defaultTtl: 60, postBytes: 10, queuePolicy: false })
  const path = join(dir, 'pools', 'p.sqlite')
  for (const f of [path, `${path}-wal`, `${path}-shm`]) t.equal(statSync(f).mode & 0o777, 0o600, `${f} is 0600`)
  t.equal(statSync(join(dir, 'pools')).mode & 0o777, 0o700, 'a directory it creates is 0700')
})
