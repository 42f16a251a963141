/**
 * The bench's durable floor (perf/uws-hello.ts in its durable mode) and the latency monitor's
 * seconds (perf/lib/procs.ts redisLatency), against a real redis-server: the floor answers only
 * after its write reached Redis, writes the size it was given, and says so when Redis fails it;
 * an event that went over the threshold in two seconds counts (at least) two.
 */
import t from 'tap'
import { latencyText, redisCommand, redisLatency, startHello } from '../../perf/lib/procs.js'
import { startRedis } from '../helpers/index.js'

const get = async (url: string): Promise<{ status: number; body: string }> => {
  const r = await fetch(url)
  return { status: r.status, body: await r.text() }
}

t.test('without Redis it is the hello-world', async (t) => {
  const hello = await startHello()
  t.teardown(() => hello.stop())
  t.same(await get(hello.url), { status: 200, body: 'hello' })
})

t.test('the durable floor answers after one SET of the given size on a durable Redis', async (t) => {
  const redis = await startRedis(t, { appendfsync: 'always' })
  const hello = await startHello({ redisPort: redis.port, bytes: 3553 })
  t.teardown(() => hello.stop())
  for (let i = 0; i < 3; i++) t.same(await get(`${hello.url}/v2/queues/q/messages`), { status: 200, body: 'ok' })
  // Answered only after Redis acknowledged: the writes are there when the replies are.
  const keys = (await redisCommand(redis.port, ['KEYS', 'floor:*'])).match(/floor:\d+/g) ?? []
  t.same(keys.sort(), ['floor:0', 'floor:1', 'floor:2'])
  t.equal(await redisCommand(redis.port, ['STRLEN', 'floor:2']), ':3553\r\n')
  t.equal(await redisCommand(redis.port, ['CONFIG', 'GET', 'appendfsync']), '*2\r\n$11\r\nappendfsync\r\n$6\r\nalways\r\n')
})

t.test('a write Redis refuses is a 503 with its reason, not a hang', async (t) => {
  const redis = await startRedis(t)
  const hello = await startHello({ redisPort: redis.port, bytes: 100 })
  t.teardown(() => hello.stop())
  t.equal((await get(hello.url)).status, 200)
  await redisCommand(redis.port, ['CONFIG', 'SET', 'maxmemory', '1'])
  const r = await get(hello.url)
  t.equal(r.status, 503)
  t.match(r.body, /OOM/)
})

t.test('redisLatency counts the seconds an event went over the threshold', async (t) => {
  const redis = await startRedis(t)
  await redisCommand(redis.port, ['CONFIG', 'SET', 'latency-monitor-threshold', '5'])
  await redisCommand(redis.port, ['LATENCY', 'RESET'])
  // A script that runs ~20 ms is one `command` event; two of them in two different seconds.
  const busy = "local t = redis.call('TIME') local s = t[1] * 1e6 + t[2] repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] - s > 20000 return 1"
  await redisCommand(redis.port, ['EVAL', busy, '0'])
  const first = Number((await redisCommand(redis.port, ['TIME'])).split('\r\n')[2])
  while (Number((await redisCommand(redis.port, ['TIME'])).split('\r\n')[2]) === first) await new Promise((r) => setImmediate(r))
  await redisCommand(redis.port, ['EVAL', busy, '0'])
  const events = await redisLatency(redis.port, true)
  const command = events.get('command')
  t.ok(command, `a command event (${[...events.keys()].join(', ')})`)
  t.ok(command!.worst >= 20, `worst ${command!.worst} ms`)
  // Two at least: on a loaded machine another command (LATENCY RESET itself) may be preempted
  // past the threshold in a third second; a count that ignored the history would say 1.
  t.ok(command!.seconds >= 2, `${command!.seconds} seconds`)
  t.equal(latencyText('command', command!), `command ${command!.worst} ms in ${command!.seconds} s`)
  t.equal(latencyText('fork', { worst: 12, seconds: 1 }), 'fork 12 ms')
  // Reset: nothing left.
  t.equal((await redisLatency(redis.port, false)).size, 0)
})
