/**
 * A PATCH of a queue's `_flavor` to a flavor its pool is not in moves the queue, live, to a pool
 * of that flavor (issue 13, item 1; proxy/pooled-driver.ts `checkFlavorChange`), instead of the
 * 409 it used to answer: the PATCH succeeds, a migration (origin `flavor`) takes the queue there,
 * and its messages, claims and metadata — the new `_flavor` included — come along; and a change
 * back moves it back, over the tombstone its first move left.
 */
import t from 'tap'
import { waitFor } from '../helpers/index.js'
import { migrationEnded, placeOnSource, startCluster, type MigrationView } from './harness.js'

t.setTimeout(120_000)

const PATCH = { 'Content-Type': 'application/openstack-messaging-v2.0-json-patch' }

t.test('PATCH _flavor to a flavor on another pool migrates the queue there', async (t) => {
  const c = await startCluster(t, { from: 'sqlite', to: 'sqlite' })
  t.equal((await c.admin('PUT', '/v2/flavors/gold', { pool_list: [c.to] })).status, 201)
  const client = c.client()
  await placeOnSource(c, client, 'shiny', { color: 'red' })
  const posted = await client.req('POST', '/v2/queues/shiny/messages', { body: { messages: Array.from({ length: 30 }, (_, i) => ({ body: { i }, ttl: 600 })) } })
  t.equal(posted.status, 201)
  const claim = await client.req('POST', '/v2/queues/shiny/claims?limit=3', { body: { ttl: 300, grace: 60 } })
  t.equal(claim.status, 201)

  const r = await client.req('PATCH', '/v2/queues/shiny', { headers: PATCH, body: [{ op: 'add', path: '/metadata/_flavor', value: 'gold' }] })
  t.equal(r.status, 200, `the flavor change is accepted (${r.text})`)
  t.equal(r.json._flavor, 'gold')

  const list = await c.admin('GET', '/v2/admin/migrations?limit=100')
  const started = (list.json.migrations as (MigrationView & { queue: string; origin: string; to_pool: string; project: string })[]).find(
    (m) => m.project === client.project && m.queue === 'shiny',
  )
  t.ok(started, 'a migration of the queue was started')
  t.match(started, { origin: 'flavor', to_pool: c.to })

  const again = await client.req('PATCH', '/v2/queues/shiny', { headers: PATCH, body: [{ op: 'add', path: '/metadata/_flavor', value: 'gold2' }] })
  t.equal(again.status, 400, 'an unknown flavor is still 400')

  const m = await migrationEnded(c, started!.id)
  t.equal(m.state, 'done', 'the queue moved')
  const stats = await waitFor(async () => (await client.req('GET', '/v2/queues/shiny/stats')).json?.messages)
  t.match(stats, { total: 30, claimed: 3, free: 27 }, 'every message came along, the claim too')
  const meta = (await client.req('GET', '/v2/queues/shiny')).json
  t.match(meta, { color: 'red', _flavor: 'gold' }, 'with the new flavor in its metadata')
  const msgs = claim.json.messages as { href: string }[]
  for (const x of msgs) t.equal((await client.req('DELETE', x.href)).status, 204, 'a claimed message is deleted with its claim id after the move')
  t.equal((await client.req('GET', '/v2/queues/shiny/stats')).json.messages.total, 27)

  // Moving back by flavor: the default group has no flavor, so `_flavor` back to a flavor of the source.
  t.equal((await c.admin('PUT', '/v2/flavors/plain', { pool_list: [c.from] })).status, 201)
  const back = await client.req('PATCH', '/v2/queues/shiny', { headers: PATCH, body: [{ op: 'replace', path: '/metadata/_flavor', value: 'plain' }] })
  t.equal(back.status, 200)
  const list2 = await c.admin('GET', '/v2/admin/migrations?limit=100')
  const returning = (list2.json.migrations as (MigrationView & { queue: string; to_pool: string })[]).filter((x) => x.queue === 'shiny' && x.to_pool === c.from)
  t.equal(returning.length, 1, 'and a second change once the first is done moves it back')
  t.equal((await migrationEnded(c, returning[0]!.id)).state, 'done')
  t.equal((await client.req('GET', '/v2/queues/shiny/stats')).json.messages.total, 27, 'through a tombstone of its own earlier move')
})
