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
