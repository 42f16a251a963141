import t from 'tap'
import { ConfigError, loadConfig, parseConfig } from '../../shared/config.js'
import { isLocalRedis, resolveWorkers } from '../../shared/auto-workers.js'
import { poolWorkerCount } from '../../catalog/pools.js'

t.test('a Redis pool is on this host when reached by loopback or a Unix socket', async (t) => {
  for (const uri of ['redis://127.0.0.1:6379', 'redis://localhost', 'redis://[::1]:6380/2?durability=fast', 'redis://:pw@127.0.0.2:7000', 'redis:/run/redis.sock', 'redis:pw@/run/redis.sock?dbid=1', 'redis:///run/redis.sock']) {
    t.ok(isLocalRedis(uri), uri)
  }
  for (const uri of ['redis://10.0.0.5:6379', 'redis://redis:6379', 'redis+sentinel://127.0.0.1:26379/m', 'redis+cluster://127.0.0.1:7000', 'redis://127.0.0.1:26379?master=m', 'rediss://127.0.0.1', 'sqlite:', 'sqlite:p.sqlite', 'redis:relative.sock', 'redis://[bad']) {
    t.notOk(isLocalRedis(uri), uri)
  }
})

t.test('"auto": no worker only where no core is spare beside the proxy and a local Redis', async (t) => {
  t.equal(resolveWorkers('auto', 'redis://127.0.0.1:6379', 2).workers, 0, '2 CPUs, local Redis: served inside the proxy')
  t.equal(resolveWorkers('auto', 'redis:/run/redis.sock', 1).workers, 0, '1 CPU, Unix socket')
  t.equal(resolveWorkers('auto', 'redis://127.0.0.1:6379', 3).workers, 1, '3 CPUs: a worker')
  t.equal(resolveWorkers('auto', 'redis://10.0.0.5:6379', 2).workers, 1, 'Redis on another host: a worker')
  t.equal(resolveWorkers('auto', 'redis+sentinel://127.0.0.1:26379/m', 2).workers, 1, 'Sentinel: a worker')
  t.equal(resolveWorkers('auto', 'sqlite:', 1).workers, 1, 'SQLite: always a worker (its writes are synchronous)')
  t.match(resolveWorkers('auto', 'redis://127.0.0.1', 2).why, /2 CPUs/, 'the reason is given for the log')
  t.same(resolveWorkers(3, 'redis://127.0.0.1', 2), { workers: 3, why: 'set' }, 'a number is kept as set')
  t.equal(resolveWorkers(0, 'sqlite:', 8).workers, 0)
})

t.test('only the default pool follows the config; other pools keep their own options or 1', async (t) => {
  const pool = (name: string, uri: string, options: Record<string, unknown> = {}) => ({ name, uri, weight: 1, flavor: null, options })
  t.equal(poolWorkerCount(pool('default', 'redis://127.0.0.1'), 'auto'), resolveWorkers('auto', 'redis://127.0.0.1').workers)
  t.equal(poolWorkerCount(pool('default', 'redis://127.0.0.1', { workers: 2 }), 'auto'), 2, "the pool's options win")
  t.equal(poolWorkerCount(pool('r1', 'redis://127.0.0.1'), 'auto'), 1, 'a pool added at run time: 1')
  t.equal(poolWorkerCount(pool('default', 'sqlite:'), 'auto'), 1)
})

t.test('workers is "auto" by default, and takes "auto" or 0..64 from the file and the environment', async (t) => {
  t.equal(parseConfig({}).workers, 'auto')
  t.equal(parseConfig({ workers: 0 }).workers, 0)
  t.equal(parseConfig({ workers: 'auto' }).workers, 'auto')
  t.throws(() => parseConfig({ workers: 'many' }), ConfigError)
  t.throws(() => parseConfig({ workers: 65 }), ConfigError)
  t.equal(loadConfig({ MISSIVE_WORKERS: ' AUTO ' }).workers, 'auto')
  t.equal(loadConfig({ MISSIVE_WORKERS: '2' }).workers, 2)
  t.throws(() => loadConfig({ MISSIVE_WORKERS: 'two' }), /MISSIVE_WORKERS must be an integer or "auto", got "two"/)
})
