/**
 * Key layout: queues and projects whose names differ only in punctuation never see each other's
 * data, escaping is injective, and every key of a queue hashes to one Cluster slot.
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { manualClock } from '../../shared/clock.js'
import { buildKeys, cachedKeysCount, catalogueKey, escapePart, queueKeys, queueTag, refOfTag, unescapePart } from '../../worker/storage/redis/keys.js'
import { listOpts, postOpts } from '../contract/suite.js'
import { startRedis } from '../helpers/index.js'
import { keySlot, openRedisDriver, rawClient } from './util.js'

const server = await startRedis(t)

t.test('CRC16 slot function matches Redis Cluster', async (t) => {
  t.equal(keySlot('foo'), 12182)
  t.equal(keySlot('somekey'), 11058)
  t.equal(keySlot('{foo}.bar'), keySlot('foo'))
  t.equal(keySlot('a{}b'), keySlot('a{}b'), 'empty tag: the whole key')
})

t.test('the keys memory stays bounded and drops the oldest queue first', async (t) => {
  const project = `p-${randomUUID()}`
  const ref = (i: number) => ({ project: i % 2 ? project : `${project}-b`, queue: `q${i}` })
  // More queues than are remembered (10,000), over two projects.
  for (let i = 0; i < 10_050; i++) queueKeys(ref(i))
  t.equal(cachedKeysCount(), 10_000, 'bounded')
  const recent = queueKeys(ref(10_049))
  t.equal(queueKeys(ref(10_049)), recent, 'the newest is remembered: the same object')
  t.same(queueKeys(ref(10_049)), buildKeys(ref(10_049)))
  // The oldest went one at a time: the 10,000 newest are all still remembered.
  const kept = Array.from({ length: 9_999 }, (_, k) => queueKeys(ref(10_049 - 1 - k)))
  t.equal(cachedKeysCount(), 10_000)
  t.ok(kept.every((k, n) => queueKeys(ref(10_048 - n)) === k), 'every one of the newest 10,000 stays: none rebuilt')
  const old = queueKeys(ref(0))
  t.same(old, buildKeys(ref(0)), 'an evicted queue gets its keys built again, the same')
  t.equal(cachedKeysCount(), 10_000)
})

t.test('escaping is injective and reversible', async (t) => {
  const names = ['p', 'p.a', 'p/a', 'p}', 'p{', 'p:a', 'p%2Fa', '%', 'a/b', 'a:b', '{x}', 'a.b', 'a-b', 'a_b', 'é☃', '']
  const seen = new Map<string, string>()
  for (const n of names) {
    const e = escapePart(n)
    t.notMatch(e, /[/{}:]/, `${JSON.stringify(n)} escapes to no separator`)
    t.equal(unescapePart(e), n)
    t.notOk(seen.has(e), `${JSON.stringify(n)} collides with ${seen.get(e)}`)
    seen.set(e, n)
  }
  const tags = new Set<string>()
  for (const p of names) for (const q of names) tags.add(queueTag({ project: p, queue: q }))
  t.equal(tags.size, names.length ** 2, 'every (project, queue) pair has its own tag')
  t.same(refOfTag(queueTag({ project: 'p/a', queue: 'b' })), { project: 'p/a', queue: 'b' })
  t.not(queueTag({ project: 'p/a', queue: 'b' }), queueTag({ project: 'p', queue: 'a/b' }))
})

t.test('punctuated projects and queues never see each other', async (t) => {
  const clock = manualClock()
  const driver = await openRedisDriver(t, server, { query: 'verify=false', clock })
  const redis = rawClient(t, server)
  const run = randomUUID().slice(0, 8)
  const projects = ['p', 'p.a', 'p/a', 'p}', 'p{', 'p:a'].map((p) => `${run}${p}`)
  // Only [A-Za-z0-9_.-] reach the driver through the API; the driver is safe for any name.
  const queues = ['a.b', 'a-b', 'a_b', 'a/b', 'a:b', '{x}', 'a', 'b']
  const ids = new Map<string, string[]>()
  for (const project of projects) {
    for (const queue of queues) {
      const ref = { project, queue }
      ids.set(`${project}|${queue}`, await driver.postMessages(ref, [{ body: JSON.stringify(`${project}|${queue}`) }], postOpts()))
      await driver.createClaim(ref, { ttl: 60, grace: 60, limit: 1 })
    }
  }
  for (const project of projects) {
    const listed = await driver.listQueues(project, { limit: 50, withCount: true })
    t.same(listed.items.map((q) => q.name), [...queues].sort(), `${project} lists its own queues`)
    t.equal(listed.count, queues.length)
    for (const queue of queues) {
      const ref = { project, queue }
      const page = await driver.listMessages(ref, listOpts())
      t.same(page.items.map((m) => m.body), [JSON.stringify(`${project}|${queue}`)], `${project} ${queue} holds its own message`)
      t.match(await driver.stats(ref), { total: 1, claimed: 1 })
      for (const [other, otherIds] of ids) {
        if (other === `${project}|${queue}`) continue
        t.equal(await driver.getMessage(ref, otherIds[0]), null)
      }
    }
  }

  // Every key in the server belongs to exactly one queue (or catalogue), and a queue's keys
  // share one slot.
  const keys = new Set<string>()
  let cursor = '0'
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `missive:*${run}*`, 'COUNT', 1000)
    cursor = next
    for (const k of batch) keys.add(k)
  } while (cursor !== '0')
  const expected = new Set<string>()
  for (const project of projects) {
    expected.add(catalogueKey(project))
    for (const queue of queues) {
      const k = queueKeys({ project, queue })
      const slots = new Set(k.list.map(keySlot))
      t.equal(slots.size, 1, `${project} ${queue}: one slot`)
      for (const key of k.list) expected.add(key)
    }
  }
  for (const k of keys) t.ok(expected.has(k), `key ${k} is one the layout names`)
  t.ok(keys.size >= projects.length * (queues.length * 7 + 1), 'the queues have their keys')

  // Deleting one queue leaves its punctuated neighbours alone.
  await driver.deleteQueue({ project: projects[0], queue: 'a.b' })
  t.equal((await driver.stats({ project: projects[0], queue: 'a-b' })).total, 1)
  t.equal((await driver.stats({ project: projects[1], queue: 'a.b' })).total, 1)
  t.equal((await driver.stats({ project: projects[0], queue: 'a.b' })).total, 0)
})
