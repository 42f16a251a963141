/**
 * Tenancy: a project sees and changes only its own queues, messages and claims, whatever names
 * and ids it sends. Runs against the whole service (supervisor → worker → proxy, RPC hop
 * included) and against the in-process harness.
 */
import t, { type Test } from 'tap'
import { startMissive } from '../helpers/index.js'
import { idFromHref, randomProject, zaqarClient, type HttpResp, type ZaqarClient } from '../helpers/http.js'
import { startHarness } from '../http/harness.js'

/** `value` as JSON without its time-dependent `age` fields. */
function stable(value: unknown): string {
  return JSON.stringify(value, (k, v: unknown) => (k === 'age' ? undefined : v))
}

/** Everything project A can read about its queues, as one string (ages removed). */
async function snapshot(a: ZaqarClient, queues: string[], ids: Record<string, string[]>, claims: Record<string, string>): Promise<string> {
  const parts: Record<string, unknown> = {}
  const get = async (path: string): Promise<unknown> => {
    const r = await a.req('GET', path)
    return { status: r.status, body: r.json ?? r.text }
  }
  parts.list = await get('/v2/queues?detailed=true&with_count=true')
  for (const q of queues) {
    parts[`${q} meta`] = await get(`/v2/queues/${q}`)
    parts[`${q} stats`] = await get(`/v2/queues/${q}/stats`)
    parts[`${q} bulk`] = await get(`/v2/queues/${q}/messages?ids=${ids[q].join(',')}`)
    parts[`${q} list`] = await get(`/v2/queues/${q}/messages?echo=true&include_claimed=true&limit=20`)
    for (const id of ids[q]) parts[`${q} ${id}`] = await get(`/v2/queues/${q}/messages/${id}`)
    if (claims[q] !== undefined) parts[`${q} claim`] = await get(`/v2/queues/${q}/claims/${claims[q]}`)
  }
  return stable(parts)
}

async function crossProject(t: Test, base: string): Promise<void> {
  const a = zaqarClient(base, { project: randomProject('tenant-a') })
  // B even borrows A's Client-ID: only the project decides what is visible.
  const b = zaqarClient(base, { project: randomProject('tenant-b'), clientId: a.clientId })
  // Same project name in another case: a different project in Zaqar.
  const bCase = zaqarClient(base, { project: a.project.toUpperCase() })
  const queues = ['orders', 'orders.eu']
  const ids: Record<string, string[]> = {}
  const claims: Record<string, string> = {}
  const claimed: Record<string, string[]> = {}

  for (const [i, q] of queues.entries()) {
    const put = await a.req('PUT', `/v2/queues/${q}`, { body: { description: `A's ${q}`, _default_message_ttl: 600 + i } })
    t.equal(put.status, 201, `A creates ${q}`)
    const posted = await a.req('POST', `/v2/queues/${q}/messages`, {
      body: { messages: Array.from({ length: 6 }, (_, n) => ({ body: { owner: 'A', q, n } })) },
    })
    t.equal(posted.status, 201, `A posts to ${q}`)
    ids[q] = (posted.json?.resources ?? []).map(idFromHref)
    const claim = await a.req('POST', `/v2/queues/${q}/claims?limit=2`, { body: { ttl: 300, grace: 60 } })
    t.equal(claim.status, 201, `A claims in ${q}`)
    claims[q] = idFromHref(claim.headers.get('location') ?? '')
    claimed[q] = (claim.json?.messages ?? []).map((m: { id: string }) => m.id)
    t.equal(claimed[q].length, 2)
  }
  const before = await snapshot(a, queues, ids, claims)
  t.match(before, /"owner":"A"/, 'the snapshot holds A\'s messages')

  const expectStatus = (r: HttpResp, status: number | number[], what: string): void => {
    const ok = Array.isArray(status) ? status.includes(r.status) : r.status === status
    t.ok(ok, `${what}: ${r.status}`, ok ? {} : { body: r.text.slice(0, 300), expected: status })
  }

  for (const intruder of [b, bCase]) {
    const who = intruder === b ? 'B' : 'B (A upper-cased)'
    for (const prefix of ['/v2', '/v1.1']) {
      for (const q of queues) {
        const path = `${prefix}/queues/${q}`
        const all = ids[q].join(',')
        const cid = claims[q]
        for (const id of ids[q]) {
          expectStatus(await intruder.req('GET', `${path}/messages/${id}`), 404, `${who} GET ${path}/messages/<A's id>`)
        }
        expectStatus(await intruder.req('GET', `${path}/messages?ids=${all}`), 404, `${who} bulk GET A's ids`)
        const list = await intruder.req('GET', `${path}/messages?echo=true&include_claimed=true`)
        t.same(list.json?.messages, [], `${who} lists nothing in ${path}`)
        const stats = await intruder.req('GET', `${path}/stats`)
        t.same(stats.json, { messages: { claimed: 0, free: 0, total: 0 } }, `${who} sees empty stats for ${path}`)
        const meta = await intruder.req('GET', path)
        t.notMatch(meta.text, /A's/, `${who} cannot read A's metadata of ${path}`)

        expectStatus(await intruder.req('GET', `${path}/claims/${cid}`), 404, `${who} GET A's claim`)
        expectStatus(await intruder.req('PATCH', `${path}/claims/${cid}`, { body: { ttl: 43200, grace: 43200 } }), 404, `${who} renews A's claim`)
        expectStatus(await intruder.req('DELETE', `${path}/claims/${cid}`), 204, `${who} releases A's claim`)
        expectStatus(await intruder.req('POST', `${path}/claims?limit=20`, { body: { ttl: 60, grace: 60 } }), 204, `${who} claims in ${path}`)

        for (const id of ids[q]) {
          expectStatus(await intruder.req('DELETE', `${path}/messages/${id}`), 204, `${who} DELETE A's message`)
          expectStatus(await intruder.req('DELETE', `${path}/messages/${id}?claim_id=${cid}`), [204, 400], `${who} DELETE A's message with A's claim id`)
        }
        expectStatus(await intruder.req('DELETE', `${path}/messages?ids=${all}`), 204, `${who} bulk DELETE A's ids`)
        const pop = await intruder.req('DELETE', `${path}/messages?pop=20`)
        expectStatus(pop, 200, `${who} pops ${path}`)
        t.same(pop.json?.messages, [], `${who} pops nothing`)
        if (prefix === '/v2') {
          const patch = await intruder.req('PATCH', path, {
            raw: JSON.stringify([{ op: 'add', path: '/metadata/description', value: 'hijacked' }]),
            headers: { 'Content-Type': 'application/openstack-messaging-v2.0-json-patch' },
          })
          expectStatus(patch, 404, `${who} PATCHes A's metadata`)
          expectStatus(await intruder.req('POST', `${path}/purge`, { body: { resource_types: ['messages'] } }), [204, 404], `${who} purges ${path}`)
        }
        expectStatus(await intruder.req('DELETE', path), 204, `${who} deletes ${path}`)
      }
      const listed = await intruder.req('GET', `${prefix}/queues?detailed=true`)
      t.same(listed.json?.queues, [], `${who} sees no queue in ${prefix}/queues`)
    }
    t.equal(await snapshot(a, queues, ids, claims), before, `A unchanged after ${who}'s reads, claims and deletes`)
  }

  // B now uses the same names for queues of its own, then purges and deletes them.
  for (const q of queues) {
    const path = `/v2/queues/${q}`
    t.equal((await b.req('PUT', path, { body: { description: 'B' } })).status, 201, `B creates its own ${q} (201: new to B)`)
    const patch = await b.req('PATCH', path, {
      raw: JSON.stringify([{ op: 'add', path: '/metadata/description', value: 'B patched' }]),
      headers: { 'Content-Type': 'application/openstack-messaging-v2.0-json-patch' },
    })
    t.equal(patch.status, 200, `B patches its own ${q}`)
    const posted = await b.req('POST', `${path}/messages`, { body: { messages: [{ body: { owner: 'B' } }, { body: { owner: 'B' } }] } })
    t.equal(posted.status, 201)
    const bIds: string[] = (posted.json?.resources ?? []).map(idFromHref)
    const bList = await b.req('GET', `${path}/messages?echo=true&include_claimed=true`)
    t.same(bList.json?.messages?.map((m: { id: string }) => m.id), bIds, `B lists only its own messages in ${q}`)
    const bClaim = await b.req('POST', `${path}/claims?limit=20`, { body: { ttl: 60, grace: 60 } })
    t.same(bClaim.json?.messages?.map((m: { id: string }) => m.id), bIds, `B claims only its own messages in ${q}`)
    const bClaimId = idFromHref(bClaim.headers.get('location') ?? '')
    expectStatus(await b.req('DELETE', `${path}/messages/${ids[q][2]}?claim_id=${bClaimId}`), [204, 400], `B DELETE A's id with B's own claim`)
    for (const id of ids[q]) expectStatus(await b.req('GET', `${path}/messages/${id}`), 404, `B still cannot GET A's message`)
    expectStatus(await b.req('GET', `${path}/claims/${claims[q]}`), 404, `B still cannot GET A's claim`)
    const bStats = await b.req('GET', `${path}/stats`)
    t.match(bStats.json, { messages: { total: 2, claimed: 2 } }, `B's stats count only B's messages`)
    const bQueues = await b.req('GET', '/v2/queues')
    t.ok(bQueues.json?.queues?.every((x: { name: string }) => queues.includes(x.name)), 'B lists only its own queues')
    expectStatus(await b.req('POST', `${path}/purge`, { body: { resource_types: ['messages'] } }), 204, `B purges its ${q}`)
    expectStatus(await b.req('DELETE', path), 204, `B deletes its ${q}`)
  }
  t.equal(await snapshot(a, queues, ids, claims), before, "A byte-for-byte unchanged after B's purge and delete of same-named queues")

  // A itself still works normally: its claim is live, its messages deletable with it.
  const aClaim = await a.req('GET', `/v2/queues/orders/claims/${claims.orders}`)
  t.same(aClaim.json?.messages?.map((m: { id: string }) => m.id).sort(), [...claimed.orders].sort(), "A's claim intact")
  t.equal(aClaim.json?.ttl, 300, "A's claim TTL not renewed by B")
  const del = await a.req('DELETE', `/v2/queues/orders/messages/${claimed.orders[0]}?claim_id=${claims.orders}`)
  t.equal(del.status, 204, 'A deletes with its own claim id')
}

async function namesAndProjects(t: Test, base: string): Promise<void> {
  const root = randomProject('names')
  // Separators a store might join keys with, and SQL LIKE wildcards (`_`, `%`).
  const projects = [root, `${root}.a`, `${root}/a`, `${root}a`, `${root}_a`, `${root}%`]
  const queues = ['a.b', 'a-b', 'A_b', 'a_b', 'b', 'a', 'a.b.c']
  const clients = projects.map((p) => zaqarClient(base, { project: p }))
  const bodyOf = (p: string, q: string): unknown => ({ p, q })

  for (const c of clients) {
    for (const q of queues) {
      const r = await c.req('POST', `/v2/queues/${q}/messages`, { body: { messages: [{ body: bodyOf(c.project, q) }] } })
      t.equal(r.status, 201, `post to ${c.project.slice(root.length) || '<root>'} / ${q}`)
    }
  }
  /** `deleted`: queues gone from the listing; `emptied`: queues listed but without messages. */
  const check = async (deleted: Set<string>, emptied = new Set<string>()): Promise<void> => {
    for (const c of clients) {
      const pname = c.project.slice(root.length) || '<root>'
      const expected = queues.filter((q) => !deleted.has(`${c.project}|${q}`))
      const listed = await c.req('GET', '/v2/queues?limit=20')
      t.same(
        listed.json?.queues?.map((x: { name: string }) => x.name),
        [...expected].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)),
        `project ${pname} lists exactly its queues, byte order`,
      )
      for (const q of queues) {
        const gone = deleted.has(`${c.project}|${q}`) || emptied.has(`${c.project}|${q}`)
        const r = await c.req('GET', `/v2/queues/${q}/messages?echo=true&include_claimed=true&limit=20`)
        t.same(
          r.json?.messages?.map((m: { body: unknown }) => m.body),
          gone ? [] : [bodyOf(c.project, q)],
          `project ${pname} queue ${q}: ${gone ? 'nothing (deleted)' : 'exactly its own message'}`,
        )
      }
    }
  }
  await check(new Set())

  // Claim everything in one (project, queue), then delete a queue in another: no spill-over.
  const claim = await clients[0].req('POST', '/v2/queues/a.b/claims?limit=20', { body: { ttl: 60, grace: 60 } })
  t.same(claim.json?.messages?.map((m: { body: unknown }) => m.body), [bodyOf(root, 'a.b')], 'claim takes only its own message')
  const stats = await clients[1].req('GET', '/v2/queues/b/stats')
  t.match(stats.json, { messages: { claimed: 0, total: 1 } }, `${root}.a / b is unclaimed`)
  await clients[0].req('DELETE', `/v2/queues/a.b/claims/${idFromHref(claim.headers.get('location') ?? '')}`)

  t.equal((await clients[0].req('DELETE', '/v2/queues/a.b')).status, 204)
  t.equal((await clients[0].req('DELETE', '/v2/queues/a_b')).status, 204)
  t.equal((await clients[1].req('DELETE', '/v2/queues/b')).status, 204)
  t.equal((await clients[2].req('POST', '/v2/queues/A_b/purge', { body: { resource_types: ['messages'] } })).status, 204)
  t.equal((await clients[4].req('DELETE', '/v2/queues/a-b')).status, 204)
  t.equal((await clients[5].req('POST', '/v2/queues/a_b/purge', { body: { resource_types: ['messages'] } })).status, 204)
  await check(
    new Set([`${root}|a.b`, `${root}|a_b`, `${root}.a|b`, `${root}_a|a-b`]),
    new Set([`${root}/a|A_b`, `${root}%|a_b`]),
  )
  const neighbour = await clients[2].req('GET', '/v2/queues/a_b/stats')
  t.match(neighbour.json, { messages: { total: 1 } }, 'a_b untouched by the purge of A_b')
  // LIKE-style matching would make `_` match `.` and `-`.
  const lookalike = await clients[0].req('GET', '/v2/queues/a.b/stats')
  t.match(lookalike.json, { messages: { total: 0 } }, 'a.b in the first project stays deleted, nothing leaked in')
  const undeleted = await clients[5].req('GET', '/v2/queues/a-b/stats')
  t.match(undeleted.json, { messages: { total: 1 } }, 'a-b of the `%` project untouched by deleting a-b in the `_a` project')
}

t.test('full service', async (t) => {
  const m = await startMissive(t)
  await t.test('project B cannot touch project A', (t) => crossProject(t, m.baseUrl))
  await t.test('look-alike queue names and projects are isolated', (t) => namesAndProjects(t, m.baseUrl))
})

t.test('in-process harness', async (t) => {
  const h = await startHarness(t)
  await t.test('project B cannot touch project A', (t) => crossProject(t, h.base))
  await t.test('look-alike queue names and projects are isolated', (t) => namesAndProjects(t, h.base))
})
