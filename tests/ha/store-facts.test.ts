/**
 * The facts a Redis pool's health shows (worker/storage/redis/driver.ts `storeFacts`; docs/ha.md,
 * "Health"), read from real `INFO server` / `INFO replication` replies: role, server identity,
 * online replicas and the slowest one's lag.
 */
import t from 'tap'
import { storeFacts } from '../../worker/storage/redis/driver.js'

const server = '# Server\r\nredis_version:7.0.15\r\nrun_id:3f1c9e0b6f2d4a8e9c7b5a3d1e0f2a4b6c8d0e1f\r\ntcp_port:6379\r\n'

t.test('a master with two online replicas and one still syncing', async (t) => {
  const replication =
    '# Replication\r\nrole:master\r\nconnected_slaves:3\r\n' +
    'slave0:ip=127.0.0.1,port=7001,state=online,offset=1234,lag=0\r\n' +
    'slave1:ip=127.0.0.1,port=7002,state=online,offset=1200,lag=2\r\n' +
    'slave2:ip=127.0.0.1,port=7003,state=wait_bgsave,offset=0,lag=9\r\n' +
    'master_failover_state:no-failover\r\nmaster_repl_offset:1234\r\n'
  t.same(storeFacts(server, replication), { role: 'master', server: '3f1c9e0b6f2d4a8e9c7b5a3d1e0f2a4b6c8d0e1f', replicas: 2, lagSeconds: 2 })
})

t.test('a master alone', async (t) => {
  t.same(storeFacts(server, '# Replication\r\nrole:master\r\nconnected_slaves:0\r\n'), {
    role: 'master',
    server: '3f1c9e0b6f2d4a8e9c7b5a3d1e0f2a4b6c8d0e1f',
    replicas: 0,
  })
})

t.test('a replica', async (t) => {
  const replication = '# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:7000\r\nmaster_link_status:up\r\n'
  t.same(storeFacts(server, replication), { role: 'replica', server: '3f1c9e0b6f2d4a8e9c7b5a3d1e0f2a4b6c8d0e1f' })
})

t.test('the driver counts every change of server it reconnects to, checked or not', async (t) => {
  const { RedisDriver } = await import('../../worker/storage/redis/driver.js')
  const { parseRedisUri } = await import('../../shared/storage/redis-uri.js')
  const { startRedis, waitFor } = await import('../helpers/index.js')
  const first = await startRedis(t, { appendfsync: 'always' })
  const driver = await RedisDriver.open({ ...parseRedisUri(`${first.url}?gc_interval=0`, 'durable') })
  t.teardown(() => driver.close())
  const before = await driver.info()
  t.equal(before.changes, 0)
  t.type(before.boot, 'string')
  // Two restarts (a failover and a failback look the same to a client), no check in between:
  // each reconnection is noted.
  let server = first
  for (let n = 1; n <= 2; n++) {
    await server.kill9()
    server = await startRedis(t, { appendfsync: 'always', dir: first.dir, port: first.port })
    // Reconnected (a ping: it reads no facts), then the next restart.
    await waitFor(() => driver.ping().then(() => true, () => false), { what: `reconnected after restart ${n}`, timeoutMs: 20_000 })
  }
  const after = await driver.info()
  t.equal(after.changes, 2, 'two new servers')
  t.equal(after.boot, before.boot, 'the same driver')
  t.type(after.lastChange, 'number')
})
