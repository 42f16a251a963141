/**
 * Subscriptions over HTTP (docs/notifications.md; zaqar/transport/wsgi/v2_0/subscriptions.py):
 * create, duplicate, list with paging, get, patch, delete, confirm, validation — the default pool
 * on the embedded SQLite store and on Redis (subscriptions live in the catalog, so both must
 * answer alike).
 */
import t from 'tap'
import { startRedis } from '../helpers/index.js'
import { startHarness } from '../http/harness.js'

const bad = (description: string) => ({ title: 'Invalid API request', description })

for (const store of ['sqlite', 'redis'] as const) {
  t.test(`${store}: subscription API`, async (t) => {
    const uri = store === 'sqlite' ? 'sqlite:' : (await startRedis(t, { appendfsync: 'everysec' })).url
    const h = await startHarness(t, {}, uri)
    const S = '/v2/queues/fans/subscriptions'

    // Create: 201 with an id; the queue is created too (as Zaqar does).
    const made = await h.req('POST', S, { body: { subscriber: 'http://hooks.example.com/a', ttl: 3600, options: { post_headers: { 'X-A': '1' } } } })
    t.equal(made.status, 201)
    t.equal(made.headers.get('location'), S)
    const id = made.json.subscription_id as string
    t.match(id, /^[0-9a-f-]{36}$/)
    t.equal((await h.req('GET', '/v2/queues')).json.queues.map((q: { name: string }) => q.name).join(), 'fans')

    const got = await h.req('GET', `${S}/${id}`)
    t.equal(got.status, 200)
    t.same(got.json, { id, source: 'fans', subscriber: 'http://hooks.example.com/a', ttl: 3600, age: got.json.age, options: { post_headers: { 'X-A': '1' } }, confirmed: false })
    t.ok(got.json.age >= 0 && got.json.age < 60)

    // Unconfirmed duplicate: 201 with the same id; once confirmed: 409.
    const dup = await h.req('POST', S, { body: { subscriber: 'http://hooks.example.com/a' } })
    t.equal(dup.status, 201)
    t.equal(dup.json.subscription_id, id)
    t.equal((await h.req('PUT', `${S}/${id}/confirm`, { body: { confirmed: true } })).status, 204)
    t.equal((await h.req('GET', `${S}/${id}`)).json.confirmed, true)
    const conflict = await h.req('POST', S, { body: { subscriber: 'http://hooks.example.com/a' } })
    t.equal(conflict.status, 409)
    t.same(conflict.json, {
      title: 'Resource conflict',
      description: 'Such subscription already exists.Subscriptions are unique by project + queue + subscriber URI.',
    })

    // Paging: default ttl, creation order, next links carrying the marker.
    const ids = [id]
    for (const sub of ['mailto:ops@example.com', 'https://hooks.example.com/b', 'http://hooks.example.com/c']) {
      const r = await h.req('POST', S, { body: { subscriber: sub } })
      t.equal(r.status, 201, sub)
      ids.push(r.json.subscription_id)
    }
    t.equal((await h.req('GET', `${S}/${ids[1]}`)).json.ttl, 3600, 'default_subscription_ttl')
    const p1 = await h.req('GET', `${S}?limit=2`)
    t.same(p1.json.subscriptions.map((s: { id: string }) => s.id), ids.slice(0, 2))
    t.same(p1.json.links, [{ rel: 'next', href: `${S}?limit=2&marker=${ids[1]}` }])
    const p2 = await h.req('GET', p1.json.links[0].href)
    t.same(p2.json.subscriptions.map((s: { id: string }) => s.id), ids.slice(2, 4))
    t.same(p2.json.links, [{ rel: 'next', href: `${S}?marker=${ids[3]}&limit=2` }])
    const p3 = await h.req('GET', p2.json.links[0].href)
    t.same(p3.json, { subscriptions: [], links: [] })
    t.equal((await h.req('GET', S)).json.subscriptions.length, 4, 'limit defaults to 10')
    t.same((await h.req('GET', `${S}?limit=21`)).json, bad('Limit must be at least 1 and may not be greater than 20.'))

    // Patch.
    t.equal((await h.req('PATCH', `${S}/${ids[1]}`, { body: { ttl: 120, options: { a: 1 } } })).status, 204)
    const patched = (await h.req('GET', `${S}/${ids[1]}`)).json
    t.equal(patched.ttl, 120)
    t.same(patched.options, { a: 1 })
    const taken = await h.req('PATCH', `${S}/${ids[1]}`, { body: { subscriber: 'http://hooks.example.com/a' } })
    t.equal(taken.status, 409)
    t.equal((await h.req('PATCH', `${S}/00000000-0000-7000-8000-000000000000`, { body: { ttl: 120 } })).status, 404)
    t.same((await h.req('PATCH', `${S}/${ids[1]}`, { body: {} })).json, bad('No subscription to create.'))
    t.same((await h.req('PATCH', `${S}/${ids[1]}`, { body: { nothing: 1 } })).json, {
      title: 'Unable to update subscription',
      description: `Subscription ${ids[1]} could not be updated.`,
    })

    // Delete: 204, then 404 on get; deleting again is still 204.
    t.equal((await h.req('DELETE', `${S}/${ids[2]}`)).status, 204)
    const gone = await h.req('GET', `${S}/${ids[2]}`)
    t.equal(gone.status, 404)
    t.same(gone.json, { title: 'Not found', description: `Subscription ${ids[2]} does not exist` })
    t.equal((await h.req('DELETE', `${S}/${ids[2]}`)).status, 204)

    // Confirm validation.
    t.same((await h.req('PUT', `${S}/${id}/confirm`, { body: { confirmed: 'yes' } })).json, bad("The 'confirmed' should be boolean."))
    t.equal((await h.req('PUT', `${S}/${ids[2]}/confirm`, { body: { confirmed: true } })).status, 404)

    // Tenants never see each other's subscriptions.
    const other = { headers: { 'X-Project-ID': 'someone-else' } }
    t.equal((await h.req('GET', `${S}/${id}`, other)).status, 404)
    t.same((await h.req('GET', S, other)).json.subscriptions, [])
    t.equal((await h.req('DELETE', `${S}/${id}`, other)).status, 204)
    t.equal((await h.req('GET', `${S}/${id}`)).status, 200, 'still there for its owner')

    // Purge: `messages` keeps subscriptions; `subscriptions` (or no body) removes them all.
    t.equal((await h.req('POST', '/v2/queues/fans/purge', { body: { resource_types: ['messages'] } })).status, 204)
    t.equal((await h.req('GET', S)).json.subscriptions.length, 3)
    t.equal((await h.req('POST', '/v2/queues/fans/purge', { body: { resource_types: ['subscriptions'] } })).status, 204)
    t.same((await h.req('GET', S)).json.subscriptions, [])
    t.equal((await h.req('POST', S, { body: { subscriber: 'http://hooks.example.com/z' } })).status, 201)
    t.equal((await h.req('POST', '/v2/queues/fans/purge')).status, 204)
    t.same((await h.req('GET', S)).json.subscriptions, [])

    // v1.1 has no subscriptions.
    t.equal((await h.req('GET', '/v1.1/queues/fans/subscriptions')).status, 404)
  })
}

t.test('create validation (Zaqar\'s messages)', async (t) => {
  const h = await startHarness(t)
  const S = '/v2/queues/v/subscriptions'
  const types = "The subscriber type of subscription must be supported in the list ['http', 'https', 'mailto']."
  const cases: [unknown, string][] = [
    [{}, 'Missing parameter subscriber in body.'],
    [{ ttl: 100 }, 'Missing parameter subscriber in body.'],
    [{ subscriber: 'ftp://x.example.com' }, types],
    [{ subscriber: 'http://' }, types],
    [{ subscriber: 'mailto:nobody' }, types],
    [{ subscriber: '' }, types],
    [{ subscriber: 42 }, types],
    [{ subscriber: 'http://x.example.com', options: 'xxx' }, 'Options must be a dict.'],
    [{ subscriber: 'http://x.example.com', ttl: 'x' }, 'TTL must be an integer.'],
    [{ subscriber: 'http://x.example.com', ttl: 59 }, 'The TTL for a subscription must be at least 60 seconds long.'],
    [{ subscriber: 'http://x.example.com', ttl: 0 }, 'The TTL for a subscription must be at least 60 seconds long.'],
    [{ subscriber: 'http://x.example.com', ttl: 1e15 }, 'The TTL seconds for a subscription plus current time must be less than 9999-12-31 23:59:59.999999.'],
    [{ subscriber: 'http://x.example.com', options: { _retry_policy: 'x' } }, 'retry_policy must be a dict.'],
    [{ subscriber: 'http://x.example.com', options: { _retry_policy: { minimum_delay: 'a' } } }, 'Retry policy: minimum_delay must be a integer.'],
    [{ subscriber: 'http://x.example.com', options: { _retry_policy: { retry_backoff_function: 'cubic' } } }, 'invalid retry_backoff_function.'],
    [{ subscriber: 'http://x.example.com', options: { _retry_policy: { minimum_delay: 30, maximum_delay: 10 } } }, 'minimum_delay must less than maximum_delay.'],
    [{ subscriber: 'http://x.example.com', options: { _retry_policy: { minimum_delay: 5, maximum_delay: 10 } } }, 'invalid minimum_delay and maximum_delay.'],
  ]
  for (const [body, description] of cases) {
    const r = await h.req('POST', S, { body })
    t.equal(r.status, 400, JSON.stringify(body))
    t.same(r.json, bad(description), JSON.stringify(body))
  }
  const arr = await h.req('POST', S, { raw: '[1]' })
  t.same(arr.json, bad('Subscriptions must be a dict.'))
  const big = await h.req('POST', S, { body: { subscriber: 'http://x.example.com', options: { pad: 'x'.repeat(70000) } } })
  t.equal(big.status, 400)
  t.same((await h.req('GET', S)).json.subscriptions, [], 'nothing was created')
  const ok = await h.req('POST', S, { body: { subscriber: 'http://x.example.com', options: { _retry_policy: { minimum_delay: 1, maximum_delay: 11, retry_backoff_function: 'geometric' } } } })
  t.equal(ok.status, 201)
})
