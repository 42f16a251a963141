/**
 * Pool URIs and the durability promise: the driver refuses a server whose persistence cannot
 * keep what the pool promises, says so clearly (also when CONFIG is disabled), and maps an
 * unreachable server and missing replica acks to `unavailable`.
 */
import t from 'tap'
import { openDriver } from '../../worker/storage/index.js'
import { parseRedisUri } from '../../shared/storage/redis-uri.js'
import { availableStoreOf, redactUri } from '../../shared/storage/registry.js'
import { freePort, startRedis, tempDir } from '../helpers/index.js'
import { postOpts, type TapTest } from '../contract/suite.js'

const open = async (t: TapTest, uri: string) => {
  const dataDir = await tempDir(t)
  const driver = await openDriver(uri, { dataDir, durability: 'durable' })
  t.teardown(() => driver.close())
  return driver
}

t.test('URI parsing', async (t) => {
  const o = parseRedisUri('redis://:s%40cret@127.0.0.1:7000/3?durability=fast&wait=2&wait_timeout=250&command_timeout=99', 'durable')
  t.match(o, { host: '127.0.0.1', port: 7000, db: 3, password: 's@cret', durability: 'fast', wait: 2, waitTimeoutMs: 250, commandTimeoutMs: 99, verify: true })
  t.match(parseRedisUri('redis://h', 'fast'), { host: 'h', port: 6379, db: 0, durability: 'fast', wait: 0, autoPipelining: false })
  t.match(parseRedisUri('redis://u:p@h:1', 'durable'), { username: 'u', password: 'p' })
  t.equal(redactUri('redis://u:secret@h:1/0'), 'redis://***@h:1/0')
  // Zaqar's URIs, verbatim (zaqar/storage/redis/driver.py ConnectionURI): dbid, socket_timeout
  // (seconds), a user-info without ':' is the password, a non-numeric path is ignored.
  t.match(parseRedisUri('redis://test123@example.com:7777?socket_timeout=1&dbid=5', 'durable'), {
    host: 'example.com', port: 7777, db: 5, password: 'test123', username: undefined, commandTimeoutMs: 1000, connectTimeoutMs: 1000,
  })
  t.match(parseRedisUri('redis://h:1/zaqar', 'durable'), { db: 0 }, 'a path Zaqar ignores is ignored')
  t.match(parseRedisUri('redis://h:1/4?dbid=2', 'durable'), { db: 2 }, 'dbid wins over the path')
  t.match(parseRedisUri('redis://h?socket_timeout=0.25&command_timeout=900', 'durable'), { commandTimeoutMs: 900, connectTimeoutMs: 250 })
  // Sentinel pools (docs/ha.md): Missive's form, and Zaqar's (?master=, Sentinel port 26379 by default).
  t.match(parseRedisUri('redis+sentinel://:pw@s1:26380,s2,[::1]:26381/mymaster/2?durability=durable&wait=1&sentinel_password=spw', 'fast'), {
    sentinels: [
      { host: 's1', port: 26380 },
      { host: 's2', port: 26379 },
      { host: '::1', port: 26381 },
    ],
    master: 'mymaster',
    db: 2,
    password: 'pw',
    sentinelPassword: 'spw',
    durability: 'durable',
    wait: 1,
  })
  t.match(parseRedisUri('redis://secret@s1:26379,s2?master=dumbledore&dbid=3', 'durable'), {
    sentinels: [
      { host: 's1', port: 26379 },
      { host: 's2', port: 26379 },
    ],
    master: 'dumbledore',
    db: 3,
    password: 'secret',
  })
  t.equal(redactUri('redis+sentinel://u:secret@s1,s2/m'), 'redis+sentinel://***@s1,s2/m')
  const identity = (uri: string): string => availableStoreOf(uri).identity(uri, { dataDir: '/tmp', durability: 'durable' })
  t.equal(identity('redis+sentinel://S2:1,localhost:2/m?wait=1'), identity('redis://127.0.0.1:2,s2:1?master=m'), 'one Sentinel pool, however written')
  t.not(identity('redis+sentinel://s1/m'), identity('redis+sentinel://s1/other'), 'another master is another store')
  for (const [uri, msg] of [
    ['redis+sentinel://h1:26379,h2:26379', /must name the master/],
    ['redis+sentinel://h1:26379/m/x', /database in a Redis Sentinel pool URI is a number/],
    ['redis+sentinel://h1:99999/m', /Invalid port/],
    ['redis+sentinel:///m', /names no Sentinel/],
    ['redis://h:1?sentinel_password=x', /sentinel_password is for Sentinel pools/],
    ['redis+cluster://h1:7000/3', /database 0 only/],
    ['redis+cluster://h1:7000?dbid=1', /database 0 only/],
    ['redis+cluster://', /names no node/],
    ['redis+cluster://h1:7000?sentinel_password=x', /sentinel_password is for Sentinel pools/],
    ['rediss://h:1', /TLS.*not yet supported/],
    ['redis://h:1?durabilty=fast', /Unknown Redis pool option "durabilty"/],
    ['redis://h:1?durability=sometimes', /durability must be durable or fast/],
    ['redis://h:1?wait=-1', /wait must be an integer/],
    ['redis://h:1?master=', /names no master/],
    ['redis:var/run/redis.sock', /absolute path/],
    ['redis:', /absolute path/],
    ['redis:/tmp/r.sock?master=m', /names its Sentinels by host/],
    ['redis:/tmp/r.sock?durability=maybe', /durability must be durable or fast/],
    ['redis://h:1?socket_timeout=abc', /socket_timeout must be a number of seconds/],
    ['redis://h:1?dbid=x', /dbid must be an integer/],
  ] as const) {
    t.throws(() => parseRedisUri(uri, 'durable'), { code: 'bad_request', message: msg }, uri)
  }
  // Zaqar's Unix-socket form (ConnectionURI, STRATEGY_UNIX; its unit tests use these two).
  t.match(parseRedisUri('redis:/tmp/redis.sock', 'durable'), { path: '/tmp/redis.sock', db: 0, durability: 'durable', password: undefined })
  t.match(parseRedisUri('redis:/tmp/redis.sock?socket_timeout=1.5&dbid=2&durability=fast', 'durable'), { path: '/tmp/redis.sock', db: 2, commandTimeoutMs: 1500, connectTimeoutMs: 1500, durability: 'fast' })
  t.match(parseRedisUri('redis:secret@/tmp/redis.sock', 'durable'), { path: '/tmp/redis.sock', password: 'secret' })
  t.match(parseRedisUri('redis:///tmp/redis.sock?verify=false', 'durable'), { path: '/tmp/redis.sock', verify: false })
  t.equal(redactUri('redis:secret@/tmp/redis.sock?dbid=1'), 'redis:***@/tmp/redis.sock?dbid=1', 'the password before the path is redacted')
  t.equal(identity('redis:/tmp/redis.sock'), identity('redis:///tmp/redis.sock?durability=fast'), 'one socket, however written')
  t.not(identity('redis:/tmp/redis.sock'), identity('redis:/tmp/redis.sock?dbid=1'), 'another database is another store')
  t.match(parseRedisUri('redis+cluster://u:pw@h1:7000,[::1],h3:7002?durability=fast&wait=1', 'durable'), {
    cluster: [{ host: 'h1', port: 7000 }, { host: '::1', port: 6379 }, { host: 'h3', port: 7002 }],
    username: 'u',
    password: 'pw',
    durability: 'fast',
    wait: 1,
    db: 0,
  })
  t.equal(identity('redis+cluster://H2:2,localhost:1'), identity('redis+cluster://127.0.0.1:1,h2:2/?wait=1'), 'one Cluster pool, however written')
  // Nothing listens there: a Cluster pool that cannot be reached is a 503, not a 400.
  await t.rejects(openDriver(`redis+cluster://127.0.0.1:${await freePort()}?connect_timeout=500`, { dataDir: '/tmp', durability: 'durable' }), {
    code: 'unavailable',
  })
})

t.test('durable pool on a server without AOF is refused', async (t) => {
  const server = await startRedis(t)
  await t.rejects(open(t, server.url), {
    code: 'bad_request',
    message: /cannot keep the durability=durable promise: appendonly is "no" \(needs yes\); appendfsync is "everysec" \(needs always\)/,
  })
  await t.rejects(open(t, `${server.url}?durability=fast`), { code: 'bad_request', message: /appendonly is "no"/ })
  const unchecked = await open(t, `${server.url}?verify=false`)
  await t.resolves(unchecked.ping(), 'verify=false opens it anyway')
})

t.test('everysec keeps the fast promise, not the durable one', async (t) => {
  const server = await startRedis(t, { appendfsync: 'everysec' })
  await t.rejects(open(t, server.url), { code: 'bad_request', message: /appendfsync is "everysec" \(needs always\)/ })
  const fast = await open(t, `${server.url}?durability=fast`)
  t.equal(fast.kind, 'redis')
})

t.test('appendfsync always keeps both; fsync skipped on rewrite and allkeys eviction are refused', async (t) => {
  const server = await startRedis(t, { appendfsync: 'always' })
  t.equal((await open(t, server.url)).kind, 'redis', 'durable by default')
  t.equal((await open(t, `${server.url}?durability=fast`)).kind, 'redis')
  const lax = await startRedis(t, { appendfsync: 'always', args: ['--no-appendfsync-on-rewrite', 'yes', '--maxmemory-policy', 'allkeys-lru'] })
  await t.rejects(open(t, lax.url), {
    code: 'bad_request',
    message: /no-appendfsync-on-rewrite is "yes" \(needs no\); maxmemory-policy is "allkeys-lru"/,
  })
})

t.test('CONFIG renamed: a clear error that offers verify=false', async (t) => {
  const server = await startRedis(t, { appendfsync: 'always', args: ['--rename-command', 'CONFIG', ''] })
  await t.rejects(open(t, server.url), { code: 'bad_request', message: /CONFIG GET is disabled, renamed or not permitted.*verify=false/ })
  t.equal((await open(t, `${server.url}?verify=false`)).kind, 'redis')
})

t.test('unreachable server: unavailable', async (t) => {
  const port = await freePort()
  await t.rejects(open(t, `redis://127.0.0.1:${port}?connect_timeout=500`), { code: 'unavailable', message: /Cannot reach the Redis server/ })
})

t.test('wait=n without replicas: writes fail with unavailable, reads work', async (t) => {
  const server = await startRedis(t, { appendfsync: 'always' })
  const driver = await open(t, `${server.url}?wait=1&wait_timeout=50`)
  const ref = { project: 'p', queue: 'q' }
  await t.rejects(driver.postMessages(ref, [{ body: '1' }], postOpts()), { code: 'unavailable', retryAfter: 1 })
  t.equal((await driver.stats(ref)).total, 1, 'the primary has it; the 503 says the promise was not kept')
  const noWait = await open(t, `${server.url}?wait=0`)
  t.equal((await noWait.postMessages(ref, [{ body: '1' }], postOpts())).length, 1)
})

t.test('server gone mid-way: operations fail fast with unavailable', async (t) => {
  const server = await startRedis(t, { appendfsync: 'always' })
  // A command timeout far beyond the test's own timeout: the operations can only fail in time if
  // they fail on the lost connection itself (no offline queue, no resend), not on a timer.
  const driver = await open(t, `${server.url}?command_timeout=3600000`)
  const ref = { project: 'p', queue: 'q' }
  await driver.postMessages(ref, [{ body: '1' }], postOpts())
  await server.kill9()
  await t.rejects(driver.postMessages(ref, [{ body: '1' }], postOpts()), { code: 'unavailable' })
  await t.rejects(driver.stats(ref), { code: 'unavailable' })
  await t.rejects(driver.ping(), { code: 'unavailable' })
})

t.test('deploy/missive-redis.json and MISSIVE_DEFAULT_POOL make a Redis default pool', async (t) => {
  const { readFileSync } = await import('node:fs')
  const { join } = await import('node:path')
  const { loadConfig } = await import('../../shared/config.js')
  const { ROOT } = await import('../helpers/index.js')
  const file = join(ROOT, 'deploy/missive-redis.json')
  const config = loadConfig({ MISSIVE_CONFIG: file })
  t.match(config.defaultPool, /^redis:\/\//)
  t.match(parseRedisUri(config.defaultPool, config.durability), { durability: 'durable', host: '127.0.0.1', port: 6379 })
  t.ok(JSON.parse(readFileSync(file, 'utf8')))
  t.equal(config.workers, 'auto', 'the worker count follows the host (docs/pools.md, workers: auto)')
  const env = loadConfig({ MISSIVE_DEFAULT_POOL: 'redis://10.0.0.5:6380?durability=fast' })
  t.equal(env.defaultPool, 'redis://10.0.0.5:6380?durability=fast')
  for (const conf of ['redis-durable.conf', 'redis-fast.conf']) {
    const text = readFileSync(join(ROOT, 'deploy/redis', conf), 'utf8')
    t.match(text, /^appendonly yes$/m, `${conf}: AOF on`)
    t.match(text, conf.includes('durable') ? /^appendfsync always$/m : /^appendfsync everysec$/m)
    t.match(text, /^maxmemory-policy noeviction$/m)
    t.match(text, /^auto-aof-rewrite-percentage 400$/m, `${conf}: rewrites at 400 % (docs/redis.md, Operating notes)`)
  }
})

t.test("a pool over a Unix socket (Zaqar's redis:/path): persistence checked, messages served", async (t) => {
  const dir = await tempDir(t, 'missive-redis-unix-')
  const sock = `${dir}/redis.sock`
  await startRedis(t, { appendfsync: 'always', args: ['--unixsocket', sock, '--unixsocketperm', '700'] })
  const ref = { project: 'p-unix', queue: 'q' }
  const driver = await open(t, `redis:${sock}?durability=durable`)
  const ids = await driver.postMessages(ref, [{ body: '{"n":1}' }, { body: '{"n":2}' }], postOpts())
  t.equal(ids.length, 2)
  const claim = await driver.createClaim(ref, { ttl: 60, grace: 60, limit: 10 })
  t.same(claim?.messages.map((m) => m.body), ['{"n":1}', '{"n":2}'])
  // The persistence check runs over the socket too: a server without AOF is refused.
  const plain = await tempDir(t, 'missive-redis-unix-')
  await startRedis(t, { args: ['--unixsocket', `${plain}/redis.sock`, '--unixsocketperm', '700'] })
  await t.rejects(open(t, `redis:${plain}/redis.sock`), { code: 'bad_request', message: /appendonly is "no"/ })
  // Nothing listens on a missing socket: a 503 naming it.
  await t.rejects(open(t, `redis:${dir}/none.sock?connect_timeout=500`), { code: 'unavailable', message: /unix:.*none\.sock/ })
})
