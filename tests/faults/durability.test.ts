/**
 * Durability: a 201 means the messages are stored. (a) `kill -9` of the worker: every
 * acknowledged message and a live claim survive the restart, and requests during the outage get
 * 503 + Retry-After instead of hanging. (b) `kill -9` of the whole process tree while a producer
 * posts at full speed: a fresh service on the same data dir has every acknowledged message.
 */
import t, { type Test } from 'tap'
import { alive, startMissive, waitFor } from '../helpers/index.js'
import { running } from '../helpers/proc.js'
import { bad503, chunks, idFromHref, mapLimit, randomProject, zaqarClient, type ZaqarClient } from '../helpers/http.js'

interface Acked {
  queue: string
  body: unknown
}

/** Posts `bodies` to `queue` as one request; records the ids if the answer is a 201. Returns the status. */
async function post(c: ZaqarClient, acked: Map<string, Acked>, queue: string, bodies: unknown[]): Promise<number> {
  const r = await c.req('POST', `/v2/queues/${queue}/messages`, { body: { messages: bodies.map((body) => ({ body, ttl: 3600 })) } })
  if (r.status === 201) {
    const ids: string[] = (r.json?.resources ?? []).map(idFromHref)
    if (ids.length !== bodies.length) throw new Error(`201 with ${ids.length} ids for ${bodies.length} messages`)
    ids.forEach((id, i) => acked.set(id, { queue, body: bodies[i] }))
  }
  return r.status
}

/**
 * Checks that every acknowledged message is readable by id with its body; with `exact`, also that
 * each queue holds nothing else (listing with include_claimed and echo).
 */
async function verify(t: Test, c: ZaqarClient, acked: Map<string, Acked>, queues: string[], exact: boolean): Promise<void> {
  const byQueue = new Map<string, string[]>(queues.map((q) => [q, []]))
  for (const [id, a] of acked) byQueue.get(a.queue)!.push(id)
  const missing: string[] = []
  const wrong: string[] = []
  for (const [q, ids] of byQueue) {
    await mapLimit(chunks(ids, 20), 4, async (batch) => {
      const r = await c.req('GET', `/v2/queues/${q}/messages?ids=${batch.join(',')}`)
      if (r.status !== 200 && r.status !== 404) throw new Error(`bulk get in ${q}: ${r.status} ${r.text.slice(0, 300)}`)
      const found = new Map<string, unknown>((r.status === 200 ? r.json.messages : []).map((m: { id: string; body: unknown }) => [m.id, m.body]))
      for (const id of batch) {
        if (!found.has(id)) missing.push(`${q}/${id}`)
        else if (JSON.stringify(found.get(id)) !== JSON.stringify(acked.get(id)!.body)) wrong.push(`${q}/${id}`)
      }
    })
    if (exact) {
      const listed: string[] = []
      let path: string | undefined = `/v2/queues/${q}/messages?echo=true&include_claimed=true&limit=20`
      while (path !== undefined) {
        const r = await c.req('GET', path)
        if (r.status !== 200) throw new Error(`list ${path}: ${r.status} ${r.text}`)
        for (const m of r.json.messages) listed.push(m.id)
        path = r.json.messages.length === 0 ? undefined : r.json.links[0]?.href
      }
      t.same([...listed].sort(), [...ids].sort(), `${q}: the listing holds exactly the ${ids.length} acknowledged messages`)
    }
  }
  t.same(missing.slice(0, 20), [], `every acknowledged message is present (${acked.size} checked, ${missing.length} missing)`)
  t.same(wrong.slice(0, 20), [], 'bodies intact')
}

/** Comments how long each phase took (diagnostics for slow CI machines). */
function stopwatch(t: Test): (phase: string) => void {
  let last = performance.now()
  return (phase) => {
    const now = performance.now()
    t.comment(`${phase}: ${Math.round(now - last)} ms`)
    last = now
  }
}

t.test('kill -9 of the worker: acknowledged messages and claims survive', async (t) => {
  const lap = stopwatch(t)
  const m = await startMissive(t)
  lap('start')
  const c = zaqarClient(m.baseUrl, { project: randomProject('durability-a') })
  const queues = ['dur-0', 'dur-1', 'dur-2']
  const acked = new Map<string, Acked>()

  const statuses = await mapLimit(Array.from({ length: 300 }, (_, i) => i), 6, (i) =>
    post(c, acked, queues[i % 3], Array.from({ length: 1 + ((i * 7) % 10) }, (_, n) => ({ post: i, n }))),
  )
  t.same(statuses.filter((s) => s !== 201), [], 'all 300 posts acknowledged')
  t.equal(acked.size, Array.from({ length: 300 }, (_, i) => 1 + ((i * 7) % 10)).reduce((a, b) => a + b), 'every id recorded')

  const claimR = await c.req('POST', '/v2/queues/dur-0/claims?limit=15', { body: { ttl: 600, grace: 60 } })
  t.equal(claimR.status, 201, 'claim created')
  const claimId = idFromHref(claimR.headers.get('location') ?? '')
  const claimed: string[] = (claimR.json?.messages ?? []).map((x: { id: string }) => x.id)
  t.equal(claimed.length, 15, '15 messages claimed')
  lap('300 posts and a claim')

  const { workers } = await m.children()
  t.equal(workers.length, 1, 'one worker')
  process.kill(workers[0], 'SIGKILL')

  // Right after the kill: a quick answer, either 503 + Retry-After or a success.
  const outage = await Promise.all([
    ...Array.from({ length: 8 }, () => c.req('GET', '/v2/queues/dur-1/stats', { timeoutMs: 10_000 })),
    ...Array.from({ length: 4 }, () => c.req('GET', `/v2/queues/dur-0/claims/${claimId}`, { timeoutMs: 10_000 })),
    ...Array.from({ length: 4 }, (_, i) =>
      c.req('POST', '/v2/queues/outage/messages', { body: { messages: [{ body: { outage: i } }] }, timeoutMs: 10_000 }),
    ),
  ])
  const badOutage = outage.flatMap((r) => (r.status < 300 ? [] : bad503(r) === null ? [] : [`${r.status} ${bad503(r)}`]))
  t.same(badOutage, [], 'requests during the outage: 2xx or 503 with Retry-After')
  t.ok(outage.some((r) => r.status === 503), `the outage was visible (${outage.filter((r) => r.status === 503).length} × 503)`)
  t.ok(outage.every((r) => r.ms < 8000), `no request hung (slowest ${Math.round(Math.max(...outage.map((r) => r.ms)))} ms)`)

  await waitFor(async () => {
    const now = await m.children()
    return now.workers.length === 1 && now.workers[0] !== workers[0]
  }, { timeoutMs: 15_000, what: 'the worker to be restarted' })
  t.notOk(alive(workers[0]), 'old worker gone')
  await waitFor(async () => (await c.req('GET', '/v2/queues/dur-0/stats')).status === 200, { timeoutMs: 15_000, what: 'the service to answer again' })

  lap('restart')
  await verify(t, c, acked, queues, true)
  lap('verify')
  const stats = await c.req('GET', '/v2/queues/dur-0/stats')
  const inQ0 = [...acked.values()].filter((a) => a.queue === 'dur-0').length
  t.match(stats.json, { messages: { total: inQ0, claimed: 15, free: inQ0 - 15 } }, 'stats after the restart')

  const claim = await c.req('GET', `/v2/queues/dur-0/claims/${claimId}`)
  t.equal(claim.status, 200, 'the claim still exists')
  t.same(claim.json?.messages?.map((x: { id: string }) => x.id).sort(), [...claimed].sort(), 'with the same messages')
  t.equal(claim.json?.ttl, 600, 'and its TTL')
  for (const x of claim.json?.messages ?? []) t.equal(x.href, `/v2/queues/dur-0/messages/${x.id}?claim_id=${claimId}`)

  // Claim everything else: none of the held messages may be handed out again.
  const reclaimed: string[] = []
  for (;;) {
    const r = await c.req('POST', '/v2/queues/dur-0/claims?limit=20', { body: { ttl: 60, grace: 60 } })
    if (r.status === 204) break
    t.equal(r.status, 201)
    if (r.status !== 201) break
    for (const x of r.json.messages) reclaimed.push(x.id)
  }
  const held = new Set(claimed)
  t.same(reclaimed.filter((id) => held.has(id)), [], 'claimed messages are not claimable by a new claim')
  t.equal(reclaimed.length, inQ0 - 15, 'every other message was claimable')
  const del = await c.req('DELETE', `/v2/queues/dur-0/messages/${claimed[0]}?claim_id=${claimId}`)
  t.equal(del.status, 204, 'the surviving claim id still deletes its message')
})

/** Posts as fast as it can with `lanes` concurrent producers until `stop()`. */
function producer(c: ZaqarClient, queues: string[], lanes: number) {
  const acked = new Map<string, Acked>()
  const statuses = new Map<string, number>()
  let running = true
  let seq = 0
  const loops = Array.from({ length: lanes }, async (_, lane) => {
    while (running) {
      const i = seq++
      const bodies = Array.from({ length: 1 + (i % 10) }, (_, n) => ({ lane, i, n, pad: 'z'.repeat(200) }))
      let key: string
      try {
        key = String(await post(c, acked, queues[i % queues.length], bodies))
      } catch {
        key = 'connection error'
      }
      statuses.set(key, (statuses.get(key) ?? 0) + 1)
    }
  })
  return {
    acked,
    statuses,
    async stop(): Promise<void> {
      running = false
      await Promise.all(loops)
    },
  }
}

t.test('kill -9 of the whole tree after 20, 300 and 1,500 acknowledged messages of full-speed load, in a row: every 201 survives', async (t) => {
  const project = randomProject('durability-b')
  const queues = ['tree-0', 'tree-1']
  const acked = new Map<string, Acked>()
  const lap = stopwatch(t)
  let m = await startMissive(t)
  lap('start')
  let clientId: string | undefined
  // Each round crashes the service the previous round recovered, at a different point of the load.
  for (const killAfterAcks of [20, 300, 1500]) {
    const c = zaqarClient(m.baseUrl, { project, clientId, timeoutMs: 5000 })
    clientId = c.clientId
    const kids = await m.children()
    const pids = [m.pid, kids.proxy!, ...kids.workers]
    t.equal(pids.length, 3, 'supervisor, proxy, worker')

    const load = producer(c, queues, 8)
    // Kill points count acknowledged messages, not time, so a slow machine still crashes mid-load.
    await waitFor(() => load.acked.size >= killAfterAcks, { timeoutMs: 20_000, intervalMs: 1, what: `${killAfterAcks} acknowledged messages` })
    await m.kill9Tree()
    await load.stop()
    await waitFor(() => pids.every((p) => !running(p)), { timeoutMs: 5000, what: 'every process to be gone' }).catch(() => undefined)
    t.same(pids.filter(running), [], `kill after ${killAfterAcks} acks: supervisor, proxy and worker all killed`)
    t.comment(`kill after ${killAfterAcks} acks: posts by outcome ${JSON.stringify(Object.fromEntries(load.statuses))}, ${load.acked.size} messages acknowledged`)
    t.same(
      [...load.statuses.keys()].filter((k) => k !== '201' && k !== 'connection error' && k !== '503'),
      [],
      'only 201s, 503s and dropped connections',
    )
    for (const [id, a] of load.acked) acked.set(id, a)

    lap(`load and kill after ${killAfterAcks} acks`)
    m = await startMissive(t, { dataDir: m.dataDir })
    lap('restart')
    const c2 = zaqarClient(m.baseUrl, { project, clientId })
    await verify(t, c2, acked, queues, false)
    lap('verify')
    for (const q of queues) {
      const stats = await c2.req('GET', `/v2/queues/${q}/stats`)
      const ackedHere = [...acked.values()].filter((a) => a.queue === q).length
      t.ok(stats.json?.messages?.total >= ackedHere, `${q}: total ${stats.json?.messages?.total} ≥ ${ackedHere} acknowledged`)
    }
  }
  const c = zaqarClient(m.baseUrl, { project, clientId })
  const post2 = await c.req('POST', '/v2/queues/tree-0/messages', { body: { messages: [{ body: 'after the last restart' }] } })
  t.equal(post2.status, 201, 'the restarted service accepts writes')
})
