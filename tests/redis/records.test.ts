/**
 * A posted message's stored record (lua/lib.lua, new_record) is built from encoded parts, not by
 * packing a table of its fields: it must be byte for byte what cmsgpack packs for those fields,
 * whatever the body's length (each of msgpack's string headers), the TTL (whole or not), the delay
 * and the poster. Checked on the stored bytes against Redis's own cmsgpack, and through the
 * driver's reads.
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { queueKeys } from '../../worker/storage/redis/keys.js'
import { CLIENT_A, CLIENT_B, postOpts } from '../contract/suite.js'
import { startRedis } from '../helpers/index.js'
import { openRedisDriver, rawClient } from './util.js'

const server = await startRedis(t)

/** Packs the stored record's fields again with cmsgpack: equal to the stored bytes, or not. */
const REPACK = `local raw = redis.call('HGET', KEYS[1], ARGV[1])
local again = cmsgpack.pack(cmsgpack.unpack(raw))
return { raw == again and 1 or 0, #raw }`

t.test('records of posted messages are what cmsgpack packs, at every body-length boundary', async (t) => {
  const driver = await openRedisDriver(t, server, { query: 'verify=false' })
  const raw = rawClient(t, server)
  const ref = { project: `p-${randomUUID()}`, queue: 'q' }
  const keys = queueKeys(ref)
  // JSON string bodies: the quotes count; lengths on each side of fixstr / str8 / str16 / str32.
  const lengths = [0, 29, 30, 253, 254, 65533, 65534, 70000]
  const bodies = lengths.map((n) => JSON.stringify('b'.repeat(n)))
  const opts = postOpts({ postBytes: 512 * 1024 })
  const ids: string[] = []
  for (const body of bodies) ids.push(...(await driver.postMessages(ref, [{ body }], opts)))
  // Many in one call, with TTLs whole and not, and another poster coalesced with it.
  const mixed = [{ body: '"a"', ttl: 60 }, { body: '"b"', ttl: 60 }, { body: '"c"', ttl: 90.5 }, { body: '"d"' }]
  const [many, other] = await Promise.all([
    driver.postMessages(ref, mixed, opts),
    driver.postMessages(ref, [{ body: '"e"', ttl: 60 }], postOpts({ clientId: CLIENT_B })),
  ])
  ids.push(...many, ...other)
  for (const id of ids) {
    const [same, len] = (await raw.eval(REPACK, 1, keys.m, id)) as [number, number]
    t.equal(same, 1, `record of ${len} bytes is cmsgpack's packing of its fields`)
  }
  const got = await driver.getMessages(ref, ids)
  t.same(
    got.map((m) => m.body),
    [...bodies, ...mixed.map((m) => m.body), '"e"'],
    'bodies read back',
  )
  t.same(
    got.map((m) => m.ttl),
    [...bodies.map(() => 3600), 60, 60, 90.5, 3600, 60],
    'TTLs read back',
  )
  // The poster is in the record (echo filtering): each request's own.
  const a = await driver.listMessages(ref, { limit: 20, clientId: CLIENT_A, echo: false, includeClaimed: true })
  t.same(
    a.items.map((m) => m.id),
    other,
    "CLIENT_A without echo sees only CLIENT_B's message",
  )
  const b = await driver.listMessages(ref, { limit: 20, clientId: CLIENT_B, echo: false, includeClaimed: true })
  t.equal(b.items.length, Math.min(20, ids.length - 1), "CLIENT_B without echo sees every other message")
  await driver.deleteQueue(ref)
})

t.test('a delayed message gets its own visible time in its record', async (t) => {
  const driver = await openRedisDriver(t, server, { query: 'verify=false' })
  const raw = rawClient(t, server)
  const ref = { project: `p-${randomUUID()}`, queue: 'q' }
  const keys = queueKeys(ref)
  // Delays are honoured where the queue's policy has a default delay.
  await driver.createQueue(ref, { _default_message_delay: 5 })
  const ids = await driver.postMessages(ref, [{ body: '"now"', delay: 0 }, { body: '"later"', delay: 30 }, { body: '"also now"', delay: 0 }], postOpts())
  for (const id of ids) {
    const [same] = (await raw.eval(REPACK, 1, keys.m, id)) as [number, number]
    t.equal(same, 1, "the record is cmsgpack's packing of its fields")
  }
  const visible = await driver.listMessages(ref, { limit: 10, clientId: CLIENT_B, echo: true, includeClaimed: true, includeDelayed: false })
  t.same(
    visible.items.map((m) => m.body),
    ['"now"', '"also now"'],
    'the delayed message is not listed yet',
  )
  await driver.deleteQueue(ref)
})

t.test('requests coalesced into one call each read their own arguments, whether refused or stored', async (t) => {
  // The call carries a TTL and a delay per request when its messages share them and one per
  // message when they differ (messages.ts, postArgs): a request refused must be skipped by its
  // own width, or the requests after it read another's arguments.
  const driver = await openRedisDriver(t, server, { query: 'verify=false' })
  const ref = { project: `p-${randomUUID()}`, queue: 'q' }
  // A default delay makes the queue honour delays (a message without one gets it); the size
  // limit refuses the first request.
  await driver.createQueue(ref, { _default_message_delay: 20, _max_messages_post_size: 1000 })
  const eachOwn = [{ body: '"a1"', ttl: 60, delay: 5 }, { body: '"a2"', ttl: 70 }]
  const [refused, shared, mixed, defaults] = await Promise.allSettled([
    driver.postMessages(ref, eachOwn, postOpts({ postBytes: 5000 })),
    driver.postMessages(ref, [{ body: '"b1"', ttl: 61, delay: 0 }, { body: '"b2"', ttl: 61, delay: 0 }], postOpts({ postBytes: 100 })),
    driver.postMessages(ref, [{ body: '"c1"', ttl: 62, delay: 0 }, { body: '"c2"', ttl: 63, delay: 30 }, { body: '"c3"' }], postOpts({ postBytes: 100 })),
    driver.postMessages(ref, [{ body: '"d1"' }], postOpts({ postBytes: 100, clientId: CLIENT_B })),
  ])
  t.equal(refused.status, 'rejected', 'the request over the size limit is refused')
  t.match(refused.status === 'rejected' ? refused.reason : undefined, { kind: 'post_too_large' })
  const ids = [shared, mixed, defaults].flatMap((r) => (r.status === 'fulfilled' ? r.value : []))
  t.equal(ids.length, 6, 'the three others are stored')
  const got = await driver.getMessages(ref, ids)
  t.same(
    got.map((m) => [m.body, m.ttl]),
    [['"b1"', 61], ['"b2"', 61], ['"c1"', 62], ['"c2"', 63], ['"c3"', 3600], ['"d1"', 3600]],
    'each message has its own body and TTL',
  )
  const visible = await driver.listMessages(ref, { limit: 10, clientId: CLIENT_A, echo: true, includeClaimed: true, includeDelayed: false })
  t.same(
    visible.items.map((m) => m.body),
    ['"b1"', '"b2"', '"c1"'],
    'the messages posted with a delay, or without one (the default), are held back',
  )
  t.equal((await driver.stats(ref)).total, 6, 'nothing of the refused request was stored')
  await driver.deleteQueue(ref)
})
