/**
 * Durability of a `durable` pool: producers post at full speed; the redis-server is killed with
 * SIGKILL once a (jittered) number of messages is acknowledged, and restarted from its AOF in the same directory; every message
 * whose post resolved must be there. Several runs, each with its own kill point.
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { MissiveError } from '../../shared/errors.js'
import { postOpts } from '../contract/suite.js'
import { startRedis, tempDir, waitFor } from '../helpers/index.js'
import { openRedisDriver } from './util.js'

const RUNS = 4
const PRODUCERS = 8

for (let run = 0; run < RUNS; run++) {
  // Kill points spread over the runs, jittered: early, while the AOF is small, and later. They
  // are counted in acknowledged messages, not milliseconds, so a slow machine moves them nowhere.
  const killAfterAcks = 100 + run * 1500 + Math.floor(Math.random() * 500)
  t.test(`run ${run + 1}: kill -9 after ${killAfterAcks} acknowledged messages, restart from the AOF`, async (t) => {
    const dir = await tempDir(t, 'missive-redis-aof-')
    const server = await startRedis(t, { appendfsync: 'always', dir })
    const driver = await openRedisDriver(t, server, { query: 'durability=durable' })
    const ref = { project: `p-${randomUUID()}`, queue: 'durable' }
    const acked: string[] = []
    const failures: unknown[] = []
    const producers = Array.from({ length: PRODUCERS }, async (_, p) => {
      for (let n = 0; ; n++) {
        try {
          const msgs = Array.from({ length: 10 }, (_, i) => ({ body: JSON.stringify({ p, n, i }) }))
          acked.push(...(await driver.postMessages(ref, msgs, postOpts())))
        } catch (err) {
          failures.push(err)
          return
        }
      }
    })
    await waitFor(() => acked.length >= killAfterAcks || failures.length > 0, { intervalMs: 1, what: `${killAfterAcks} acknowledged messages` })
    t.equal(failures.length, 0, 'no post failed before the kill')
    const ackedAtKill = acked.length
    await server.kill9()
    await Promise.all(producers)
    t.ok(ackedAtKill > 0, `${ackedAtKill} messages acknowledged before the kill`)
    t.equal(failures.length, PRODUCERS, 'every producer saw its post fail')
    t.ok(
      failures.every((e) => e instanceof MissiveError && e.code === 'unavailable'),
      'posts in flight at the crash fail as unavailable (503), never as success',
    )
    await driver.close()

    const restarted = await startRedis(t, { appendfsync: 'always', dir, port: server.port })
    const after = await openRedisDriver(t, restarted, { query: 'durability=durable' })
    const found = new Set<string>()
    for (let i = 0; i < acked.length; i += 1000) {
      for (const m of await after.getMessages(ref, acked.slice(i, i + 1000))) found.add(m.id)
    }
    const lost = acked.filter((id) => !found.has(id))
    t.equal(lost.length, 0, `all ${acked.length} acknowledged messages survived (lost: ${lost.slice(0, 3).join(', ')})`)
    const stats = await after.stats(ref)
    t.ok(stats.total >= acked.length, `the queue holds ${stats.total} ≥ ${acked.length}`)
  })
}

t.test('control: without persistence the same check detects the loss', async (t) => {
  const dir = await tempDir(t, 'missive-redis-none-')
  const server = await startRedis(t, { dir })
  const driver = await openRedisDriver(t, server, { query: 'verify=false' })
  const ref = { project: `p-${randomUUID()}`, queue: 'volatile' }
  const acked: string[] = []
  for (let i = 0; i < 20; i++) acked.push(...(await driver.postMessages(ref, [{ body: '1' }], postOpts())))
  await server.kill9()
  await driver.close()
  const restarted = await startRedis(t, { dir, port: server.port })
  const after = await openRedisDriver(t, restarted, { query: 'verify=false' })
  t.same(await after.getMessages(ref, acked), [], 'acknowledged messages are gone: the check has teeth')
})
