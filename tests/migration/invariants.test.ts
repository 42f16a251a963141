/**
 * Live migration end to end (issue 13; docs/migration.md), for each store pair (SQLite→Redis,
 * Redis→SQLite, Redis→Redis): a whole `missive serve` and real redis-servers, one queue placed on
 * the source and filled, producers posting and consumers claiming and deleting while the queue
 * is moved through the admin API, a claim held across the switch, then the checker
 * (tests/migration/checker.ts): zero acknowledged posts lost, zero duplicate deliveries, zero
 * resurrected deletes, FIFO per producer; the held claim deletes its messages with its claim id
 * after the switch; metadata and dead-letter settings kept; stats right after; nothing left in
 * a Redis source. And a stale proxy: a second service that polls the catalog once a minute still
 * routes every request to the new pool after the switch, never writing to the old one.
 */
import t from 'tap'
import type { Test } from 'tap'
import type { ZaqarClient } from '../helpers/http.js'
import { waitFor } from '../helpers/index.js'
import { queuesWithMessages, redisClient } from '../pools/util.js'
import { describe, type Stamp } from './checker.js'
import { migrationEnded, placeOnSource, startCluster, startMigration, type Cluster, type Store } from './harness.js'
import { Traffic } from './traffic.js'

t.setTimeout(240_000)

const QUEUE = 'moving'
const METADATA = {
  _max_claim_count: 50,
  _dead_letter_queue: 'moving-dlq',
  _dead_letter_queue_messages_ttl: 1800,
  _default_message_ttl: 3600,
  color: 'blue',
}
/** Messages in the queue before the migration starts (producer number 99). */
const PREFILL = 600
const HOLDER = 50
/** Copy rate of the migrations here, messages/s. */
const COPY_RATE = 300

/** Fills the queue with `n` stamped messages in batches of 10. */
async function prefill(traffic: Traffic, client: ZaqarClient, n: number): Promise<void> {
  for (let s = 0; s < n; s += 10) {
    const stamps: Stamp[] = Array.from({ length: Math.min(10, n - s) }, (_, i) => ({ p: 99, s: s + i }))
    if (!(await traffic.postBatch(client, stamps))) throw new Error('prefill post failed')
  }
}

/** Claims, then deletes, until a claim finds nothing. */
async function drain(traffic: Traffic, client: ZaqarClient): Promise<void> {
  while ((await traffic.claimAndDelete(client, 98, undefined, 20)) > 0);
}

/** What the checker says, asserted; the counts as a comment. */
function assertHistory(t: Test, traffic: Traffic, label: string): void {
  const verdict = traffic.history.check()
  t.comment(`${label}: posted ${verdict.posted} (+${verdict.uncertain} unanswered), delivered ${verdict.delivered}, deleted ${verdict.deleted}, left ${verdict.remaining}; statuses ${JSON.stringify(Object.fromEntries(traffic.statuses))}`)
  t.same(describe(verdict.violations), [], `${label}: no message lost, duplicated, resurrected, invented or out of order`)
  t.same(traffic.problems.slice(0, 10), [], `${label}: clients saw nothing but successes and proper 503s`)
}

async function moveUnderLoad(t: Test, from: Store, to: Store): Promise<void> {
  const c = await startCluster(t, { from, to })
  const client = c.client()
  await placeOnSource(c, client, QUEUE, METADATA)
  const before = (await client.req('GET', `/v2/queues/${QUEUE}`)).json
  const traffic = new Traffic([client], QUEUE)
  await prefill(traffic, client, PREFILL)

  // A claim taken before the migration and held across the switch.
  const held: { claimId?: string; hrefs?: string[] } = {}
  t.equal(await traffic.claimAndDelete(client, HOLDER, held), 5, 'a claim held across the move')

  traffic.start(t)
  await waitFor(() => traffic.posted > PREFILL + 30 && traffic.delivered > 30, { what: 'traffic under way' })
  // Rate-limited, so that the copy takes a few seconds of the traffic.
  const id = await startMigration(c, client.project, QUEUE, c.to, { rate: COPY_RATE })
  const m = await migrationEnded(c, id)
  t.equal(m.state, 'done', `the migration ${from}→${to} ends done (${JSON.stringify(m)})`)
  t.comment(`migration ${from}→${to}: ${JSON.stringify(m)}`)
  // Traffic after the switch too, through the proxy's new placement.
  const after = traffic.posted
  await waitFor(() => traffic.posted > after + 30, { what: 'posts after the switch' })
  await traffic.stop()

  // The claim held across the switch: still there, and its messages deleted with its claim id.
  const claim = await client.req('GET', `/v2/queues/${QUEUE}/claims/${held.claimId}`)
  t.equal(claim.status, 200, 'the held claim exists after the switch')
  t.same(
    (claim.json.messages as { href: string }[]).map((x) => x.href.split('?')[0]).sort(),
    held.hrefs!.map((h) => h.split('?')[0]).sort(),
    'with the same messages',
  )
  for (const href of held.hrefs!) t.equal((await traffic.deleteHref(client, href))?.status, 204, 'deleted with the claim id')
  for (const href of held.hrefs!) t.equal((await client.req('GET', href.split('?')[0]!)).status, 404, 'and gone')

  // Stats right after, against what the queue lists.
  const listed = await traffic.listAll(client)
  const stats = (await client.req('GET', `/v2/queues/${QUEUE}/stats`)).json.messages
  const delivered = new Set(traffic.history.deliveries.map((d) => d.id))
  const claimed = listed.filter((x) => delivered.has(x.id) && !traffic.history.deleted.has(x.id)).length
  t.match(stats, { total: listed.length, claimed, free: listed.length - claimed }, 'stats agree with the queue’s contents')
  t.same((await client.req('GET', `/v2/queues/${QUEUE}`)).json, before, 'metadata and dead-letter settings kept')

  traffic.history.finish(listed)
  assertHistory(t, traffic, `${from}→${to}`)

  if (from === 'redis') {
    const left = await queuesWithMessages(redisClient(t, c.redis.get(c.from)!.port))
    t.notOk(left.has(`${client.project}/${QUEUE}`), 'no message of the queue left in the source Redis')
  }
  await drain(traffic, client)
  t.equal((await client.req('GET', `/v2/queues/${QUEUE}/stats`)).json.messages.total, 0, 'the final drain empties the queue')
  traffic.history.finish(await traffic.listAll(client))
  assertHistory(t, traffic, `${from}→${to} after the final drain`)
}

t.test('SQLite → SQLite under load', (t) => moveUnderLoad(t, 'sqlite', 'sqlite'))
t.test('SQLite → Redis under load', (t) => moveUnderLoad(t, 'sqlite', 'redis'))
t.test('Redis → SQLite under load', (t) => moveUnderLoad(t, 'redis', 'sqlite'))
t.test('Redis → Redis under load', (t) => moveUnderLoad(t, 'redis', 'redis'))

t.test('a proxy with a stale cache never writes to the old pool after the switch', async (t) => {
  const c: Cluster = await startCluster(t, { from: 'redis', to: 'redis', redisCatalog: true })
  // Polls the catalog once a minute: for this whole test it routes on what it saw first.
  const stale = await c.second({ catalogPollMs: 60_000 })
  const fresh = c.client()
  const other = c.clientOf(stale, fresh.project)
  await placeOnSource(c, fresh, QUEUE, METADATA)
  const traffic = new Traffic([other], QUEUE)
  await prefill(traffic, fresh, 50)
  // The stale proxy learns the placement (source) now.
  t.equal((await other.req('GET', `/v2/queues/${QUEUE}/stats`)).json.messages.total, 50)

  const id = await startMigration(c, fresh.project, QUEUE, c.to)
  t.equal((await migrationEnded(c, id)).state, 'done')
  const source = redisClient(t, c.redis.get(c.from)!.port)
  t.notOk((await queuesWithMessages(source)).has(`${fresh.project}/${QUEUE}`), 'the source holds nothing of the queue')

  // Everything through the stale proxy: it still believes the source.
  for (let s = 0; s < 20; s++) t.ok(await traffic.postOne(other, { p: 0, s }), `post ${s} through the stale proxy`)
  while ((await traffic.claimAndDelete(other, 0)) > 0);
  t.equal((await other.req('GET', `/v2/queues/${QUEUE}/stats`)).json.messages.total, 0, 'it reads the new pool')
  t.equal((await fresh.req('GET', `/v2/queues/${QUEUE}/stats`)).json.messages.total, 0, 'as does the fresh proxy')
  t.notOk((await queuesWithMessages(source)).has(`${fresh.project}/${QUEUE}`), 'and nothing was written to the old pool')
  traffic.history.finish(await traffic.listAll(fresh))
  assertHistory(t, traffic, 'stale proxy')
  t.equal(traffic.history.deleted.size, 70, 'every message was delivered and deleted through the stale proxy')
})
