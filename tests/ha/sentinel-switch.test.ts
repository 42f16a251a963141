/**
 * How a Sentinel pool's connection follows the Sentinels' `+switch-master` announcements
 * (shared/sentinel-switch.ts; docs/ha.md, "Failover behaviour"), with the races made certain by
 * relays that hold one Sentinel's answers back (tests/helpers/tcp-relay.ts):
 * - an announcement heard while a reconnection waits for a Sentinel's answer leaves that
 *   reconnection alone (ioredis's own failover detector disconnected it there, and ioredis then
 *   ended the client for good: the pool stayed at 503 until a restart);
 * - an announcement that comes late (a lagging Sentinel) does not move a connection that is at
 *   the new master already (ioredis's detector dropped it once more per Sentinel, failing the
 *   requests in flight);
 * - a master paused (SIGSTOP: its sockets open, answering nothing, as behind a network black
 *   hole) is left at the announcement, by the pool's connection and by the long-poll wake-up
 *   subscription, long before any timeout.
 */
import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import t from 'tap'
import type { LongPoll } from '../../proxy/long-poll.js'
import { RedisWakeups } from '../../proxy/long-poll-redis.js'
import { createLogger } from '../../shared/log.js'
import { postedChannel, postedMessage } from '../../shared/storage/posted.js'
import { parseRedisUri } from '../../shared/storage/redis-uri.js'
import { RedisDriver } from '../../worker/storage/redis/driver.js'
import { postOpts } from '../contract/suite.js'
import { waitFor, type Teardown } from '../helpers/index.js'
import { startTcpRelay, type TcpRelay } from '../helpers/tcp-relay.js'
import { sentinelClient, startSentinelGroup, type SentinelGroup } from './topology.js'

t.setTimeout(120_000)

/** `SUBSCRIBE +switch-master` on port `port` (a Sentinel, or a relay in front of one): what it heard. */
async function hearSwitches(t: Teardown, port: number): Promise<string[]> {
  const heard: string[] = []
  const sub = sentinelClient(t, port)
  sub.on('message', (_ch: string, msg: string) => heard.push(msg))
  await sub.subscribe('+switch-master')
  return heard
}

/** Subscribers to `+switch-master` on each Sentinel in `on` (indexes into the group's Sentinels). */
async function subscribers(clients: Redis[], on: number[]): Promise<number> {
  let n = 0
  for (const i of on) n += String(await clients[i]!.call('CLIENT', 'LIST', 'TYPE', 'pubsub')).split('\n').filter((l) => l.includes('sub=1')).length
  return n
}

/** Resolves once every Sentinel names a master other than `old` (its port). */
async function switched(group: SentinelGroup, clients: Redis[], old: number): Promise<number> {
  let now = old
  await waitFor(
    async () => {
      for (const c of clients) {
        now = Number(((await c.call('SENTINEL', 'get-master-addr-by-name', group.name)) as string[])[1])
        if (now === old) return false
      }
      return true
    },
    { what: 'every Sentinel to name the new master', timeoutMs: 60_000 },
  )
  return now
}

/** Kills the master; resolves once every Sentinel names another one (its port). */
async function failover(group: SentinelGroup, clients: Redis[]): Promise<number> {
  await group.master.kill9()
  return switched(group, clients, group.master.port)
}

const uriOf = (sentinels: { port: number }[], name: string, query: string): string =>
  `redis+sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${name}?${query}`

/** A Sentinel's command timeout is the pool's connect timeout (`query`). */
async function openDriver(t: Teardown, sentinels: { port: number }[], name: string, query: string): Promise<RedisDriver> {
  const uri = uriOf(sentinels, name, `durability=fast&${query}`)
  const driver = await RedisDriver.open({ ...parseRedisUri(uri, 'fast'), gcIntervalMs: 0 })
  t.teardown(() => driver.close())
  return driver
}

const post = (driver: RedisDriver, ref: { project: string; queue: string }, body: string): Promise<string[]> =>
  driver.postMessages(ref, [{ body: JSON.stringify(body) }], postOpts())

t.test('the switch announced while a reconnection waits for a Sentinel: the reconnection goes on', async (t) => {
  const group = await startSentinelGroup(t, { appendfsync: 'everysec' })
  const direct = group.sentinels.map((s) => sentinelClient(t, s.port))
  // The first Sentinel, which every reconnection asks first, answers through a relay; the other
  // two are reached directly, and announce the switch while the relay holds the answer back.
  const relay: TcpRelay = await startTcpRelay(t, group.sentinels[0]!.port)
  // The held answer must still be awaited when the switch is announced.
  const driver = await openDriver(t, [relay, group.sentinels[1]!, group.sentinels[2]!], group.name, 'connect_timeout=30000')
  const ref = { project: `p-${randomUUID()}`, queue: 'q' }
  t.equal((await post(driver, ref, 'before')).length, 1, 'served by the first master')
  await waitFor(async () => (await subscribers(direct, [1, 2])) >= 2, { what: 'the pool to listen to the Sentinels reached directly', timeoutMs: 20_000 })
  const heard = await Promise.all([1, 2].map((i) => hearSwitches(t, group.sentinels[i]!.port)))

  relay.hold()
  const oldMaster = group.master.port
  const newMaster = await failover(group, direct)
  // Announced on both direct Sentinels: the pool heard it too, on the same Sentinels.
  await waitFor(() => heard.every((h) => h.length > 0), { what: 'the switch announced', timeoutMs: 20_000 })
  t.equal(driver.redis.status, 'connecting', "a reconnection is waiting for the first Sentinel's answer")
  relay.release()

  // The held answer names the old master (asked before the switch): refused, and the next
  // attempt asks again and reaches the new one.
  let last = ''
  await waitFor(
    async () => {
      try {
        return (await post(driver, ref, 'after')).length === 1
      } catch (err) {
        last = `${(err as Error).message} (connection ${driver.redis.status})`
        return false
      }
    },
    { what: 'the pool to serve after the failover', timeoutMs: 30_000 },
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; last error: ${last}`)
  })
  t.not(newMaster, oldMaster, 'a replica was promoted')
  t.match(await sentinelClient(t, newMaster).info('replication'), /^role:master/m, 'the pool writes to the new master')
})

t.test('a late announcement does not move a connection at the new master already', async (t) => {
  const group = await startSentinelGroup(t, { appendfsync: 'everysec' })
  const direct = group.sentinels.map((s) => sentinelClient(t, s.port))
  // The third Sentinel lags: what it says waits in the relay until the pool serves again.
  const relay: TcpRelay = await startTcpRelay(t, group.sentinels[2]!.port)
  // Reconnections ask the Sentinels in turn (ioredis): one that asks the lagging one waits out
  // the connect timeout, then asks the next.
  const driver = await openDriver(t, [group.sentinels[0]!, group.sentinels[1]!, relay], group.name, 'connect_timeout=2000')
  const ref = { project: `p-${randomUUID()}`, queue: 'q' }
  t.equal((await post(driver, ref, 'before')).length, 1, 'served by the first master')
  await waitFor(async () => (await subscribers(direct, [0, 1, 2])) >= 3, { what: 'the pool to listen to every Sentinel', timeoutMs: 20_000 })
  const late = await hearSwitches(t, relay.port)

  relay.hold()
  const newMaster = await failover(group, direct)
  await waitFor(async () => (await post(driver, ref, 'after').catch(() => [])).length === 1, { what: 'the pool to serve from the new master', timeoutMs: 30_000 })
  const id = await driver.redis.client('ID')
  let closes = 0
  driver.redis.on('close', () => closes++)

  relay.release()
  await waitFor(() => late.length > 0, { what: "the lagging Sentinel's announcement", timeoutMs: 20_000 })
  t.match(late[0], new RegExp(` ${newMaster}$`), 'it names the master the pool is at already')
  // The pool's subscription got the same bytes from the relay at the same time; one round trip
  // to the master later, it has handled them.
  t.equal((await post(driver, ref, 'still')).length, 1, 'served')
  t.equal(await driver.redis.client('ID'), id, 'the same connection to the master')
  t.equal(closes, 0, 'never closed')
})

t.test('a paused master: the announcement moves the pool and its wake-up subscription', async (t) => {
  const group = await startSentinelGroup(t, { appendfsync: 'everysec' })
  const direct = group.sentinels.map((s) => sentinelClient(t, s.port))
  // Commands wait up to ten minutes: only the announcement can move the connection in time.
  const driver = await openDriver(t, group.sentinels, group.name, 'command_timeout=600000')
  const heard: string[] = []
  const longPoll = { notify: (ref: { queue: string }, count: number) => heard.push(`${ref.queue}:${count}`) } as unknown as LongPoll
  const wakeups = new RedisWakeups(parseRedisUri(uriOf(group.sentinels, group.name, 'durability=fast'), 'fast'), longPoll, createLogger('test', 'silent'))
  t.teardown(() => wakeups.close())
  await wakeups.ready()
  const ref = { project: `p-${randomUUID()}`, queue: 'q' }
  t.equal((await post(driver, ref, 'before')).length, 1, 'served by the first master')
  await waitFor(async () => (await subscribers(direct, [0, 1, 2])) >= 6, { what: 'the pool and its wake-ups to listen to every Sentinel', timeoutMs: 20_000 })

  const paused = group.master
  process.kill(paused.pid, 'SIGSTOP')
  t.teardown(() => {
    try {
      process.kill(paused.pid, 'SIGCONT')
    } catch {
      // gone
    }
  })
  const newMaster = await switched(group, direct, paused.port)
  await waitFor(async () => (await post(driver, ref, 'after').catch(() => [])).length === 1, { what: 'the pool to serve from the new master', timeoutMs: 30_000 })
  t.equal(driver.redis.stream.remotePort, newMaster, 'the pool is connected to the new master')
  // What the driver publishes after a post, published on the new master: the wake-up
  // subscription is there too.
  const master = sentinelClient(t, newMaster)
  await waitFor(async () => (await master.publish(postedChannel(0), postedMessage({ project: ref.project, queue: 'w' }, 1, ['x']))) === 1, {
    what: 'the wake-up subscription on the new master',
    timeoutMs: 30_000,
  })
  await waitFor(() => heard.includes('w:1'), { what: 'the wake-up' })
})
