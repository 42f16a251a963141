/**
 * Bounded work per request (issue 11 item 1): one tenant's pathological data must not make any
 * request expensive. A queue holding 100,000 delayed messages (five posts of 20,000 tiny
 * messages, each within the 256 KiB post limit) is listed page by page: every page examines at
 * most LIST_SCAN_BUDGET messages, so walking the queue takes at least 100,000 / budget pages,
 * most of them empty but with a next link, and the walk returns every visible message exactly
 * once, in FIFO order, and ends. On Redis, every script call of the whole run — the
 * 20,000-message posts included — is watched (MONITOR): none carries more than POST_CHUNK
 * messages (before, a 20,000-message post was one 285 ms script). Work is asserted by counts,
 * not by time: this machine's clock says nothing under load. A large post stays all or
 * nothing: readers never see part of it. The stores are tested with `max_messages_per_post: 0`
 * (no limit, as in Zaqar), so 20,000-message posts reach them; with the default limit (1,000)
 * such a post is refused before it costs anything. Whole service, embedded SQLite store and
 * Redis pool.
 */
import { spawnSync } from 'node:child_process'
import t, { type Test } from 'tap'
import { LIST_SCAN_BUDGET, POST_CHUNK } from '../../shared/storage/contract.js'
import { startMissive, startRedis } from '../helpers/index.js'
import { monitorRedis } from '../helpers/redis-monitor.js'
import { idFromHref, randomProject, RawConnection, zaqarClient, type RawResponse, type ZaqarClient } from '../helpers/http.js'

const BATCH = 20_000
const BACKLOG = 5 * BATCH
/**
 * The most arguments a bounded script call carries: EVALSHA, sha, key count, 9 queue keys, one
 * idempotency key per coalesced request (≤ 128), the call's header, 7 header values per request
 * (≤ 128), 4 per message (≤ POST_CHUNK).
 */
const MAX_SCRIPT_ARGS = 3 + 9 + 128 + 2 + 7 * 128 + 4 * POST_CHUNK + 11

const PYTHON = '/usr/bin/python3'

/** Streams queue `flood` with python-zaqarclient (following next links) and prints the ids as JSON. */
const ZAQARCLIENT_WALK = `
import json, sys
from zaqarclient.queues import client as zclient
cli = zclient.Client(sys.argv[1], version=2, conf={"auth_opts": {"backend": "noauth", "options": {"os_project_id": sys.argv[2]}}})
ids = [getattr(m, "id", None) or m._id for m in cli.queue("flood", auto_create=False).messages(echo=True, limit=20).stream()]
print(json.dumps(ids))
`

const tiny = (n: number): string => `{"messages":[${new Array<string>(n).fill('{"body":1}').join(',')}]}`

/**
 * Posts a raw body on a raw connection: the 201 of a big post carries a Location header listing
 * every id (as Zaqar's does), larger than fetch accepts.
 */
async function postRaw(c: ZaqarClient, q: string, raw: string): Promise<string[]> {
  const r = await postRawResponse(c, q, raw)
  if (r.status !== 201) throw new Error(`post: ${r.status} ${r.body.slice(0, 200)}`)
  return (r.json.resources as string[]).map(idFromHref)
}

async function postRawResponse(c: ZaqarClient, q: string, raw: string): Promise<RawResponse> {
  const conn = await RawConnection.open(c.base)
  try {
    const body = Buffer.from(raw)
    await conn.write(RawConnection.head('POST', `/v2/queues/${q}/messages`, { 'Client-ID': c.clientId, 'X-Project-ID': c.project }, body.length))
    await conn.write(body)
    return await conn.response(60_000)
  } finally {
    conn.close()
  }
}

async function visible(c: ZaqarClient, q: string, n: number): Promise<string[]> {
  const r = await c.req('POST', `/v2/queues/${q}/messages`, { body: { messages: Array.from({ length: n }, (_, i) => ({ body: { visible: i }, delay: 0 })) } })
  if (r.status !== 201) throw new Error(`post: ${r.status} ${r.text.slice(0, 200)}`)
  return (r.json.resources as string[]).map(idFromHref)
}

async function total(c: ZaqarClient, q: string): Promise<number> {
  const r = await c.req('GET', `/v2/queues/${q}/stats`)
  return r.json.messages.total as number
}

async function suite(t: Test, base: string, redisPort?: number): Promise<void> {
  const c = zaqarClient(base, { project: randomProject('bounded'), timeoutMs: 60_000 })
  // Every script call Redis receives, by arguments carried: [name-ish, count].
  const calls: { args: number; what: string }[] = []
  if (redisPort !== undefined) {
    const monitor = await monitorRedis(redisPort, (args) => {
      if (/^eval/i.test(args[0] ?? '')) calls.push({ args: args.length, what: `${args[0]} ${(args[3] ?? '').slice(0, 60)}` })
    })
    t.teardown(() => monitor.close())
  }

  await t.test('a listing over 100k delayed messages: bounded pages, every visible message once, in order', async (t) => {
    t.equal((await c.req('PUT', '/v2/queues/flood', { body: { _default_message_delay: 900 } })).status, 201)
    const head = await visible(c, 'flood', 2)
    for (let i = 0; i < BACKLOG / BATCH; i++) t.equal((await postRaw(c, 'flood', tiny(BATCH))).length, BATCH, `backlog post ${i + 1}`)
    const tail = await visible(c, 'flood', 3)
    t.equal(await total(c, 'flood'), BACKLOG + 5)

    const seen: string[] = []
    let path: string | undefined = '/v2/queues/flood/messages?limit=20&echo=true'
    let pages = 0
    let emptyWithNext = 0
    let last: { messages: unknown[]; links: unknown[] } | undefined
    const failed: string[] = []
    for (; path !== undefined && pages < 10_000; pages++) {
      const r = await c.req('GET', path)
      if (r.status !== 200) failed.push(`${r.status} ${r.text.slice(0, 100)}`)
      last = r.json
      const items = r.json.messages as { id: string }[]
      seen.push(...items.map((m) => m.id))
      const next = (r.json.links as { rel: string; href: string }[]).find((l) => l.rel === 'next')?.href
      if (items.length === 0 && next !== undefined) emptyWithNext++
      path = next
    }
    t.same(failed, [], 'every page answered 200')
    t.same(seen, [...head, ...tail], 'every visible message exactly once, FIFO kept')
    t.same(last?.messages, [], 'the walk ends on an empty page')
    t.same(last?.links, [], '… with no next link')
    const least = Math.floor(BACKLOG / LIST_SCAN_BUDGET)
    t.ok(pages >= least, `${pages} pages: no page examined more than the budget (${LIST_SCAN_BUDGET}; at least ${least} pages)`)
    t.ok(pages <= least + 10, `${pages} pages: each page examined a full budget`)
    t.ok(emptyWithNext >= least - 2, `${emptyWithNext} empty pages carried a next link`)

    // The real python-zaqarclient follows next links through the empty pages too.
    const py = spawnSync(PYTHON, ['-c', ZAQARCLIENT_WALK, base, c.project], { encoding: 'utf8', timeout: 120_000 })
    t.equal(py.status, 0, `python-zaqarclient ran: ${py.stderr.slice(-500)}`)
    t.same(JSON.parse(py.stdout.trim().split('\n').pop() ?? '[]'), [...head, ...tail], 'python-zaqarclient streams every visible message once, in order')
  })

  await t.test('claims and pops over the backlog stay bounded and correct', async (t) => {
    const claim = await c.req('POST', '/v2/queues/flood/claims?limit=5', { body: { ttl: 60, grace: 60 } })
    t.equal(claim.status, 201)
    t.ok(claim.json.messages.length >= 2, 'the visible messages at the head are claimed')
    const stats = await c.req('GET', '/v2/queues/flood/stats')
    t.equal(stats.status, 200)
    t.equal(stats.json.messages.total, BACKLOG + 5, 'stats still count every message')
  })

  await t.test('a large post is all or nothing for readers', async (t) => {
    const before = await total(c, 'atomic')
    const posting = postRaw(c, 'atomic', tiny(BATCH))
    const seen = new Set<number>()
    let done = false
    void posting.finally(() => (done = true))
    while (!done) {
      seen.add(await total(c, 'atomic'))
      const page = await c.req('GET', '/v2/queues/atomic/messages?limit=20&echo=true')
      seen.add(page.json.messages.length === 0 ? before : before + BATCH)
    }
    t.equal((await posting).length, BATCH)
    t.equal(await total(c, 'atomic'), before + BATCH)
    t.same([...seen].filter((n) => n !== before && n !== before + BATCH), [], 'stats never showed part of the post')
  })

  if (redisPort !== undefined) {
    await t.test('Redis: every script call of the run carried a bounded number of messages', async (t) => {
      t.ok(calls.length > (BACKLOG + BATCH) / POST_CHUNK, `${calls.length} script calls seen`)
      const over = calls.filter((c) => c.args > MAX_SCRIPT_ARGS)
      t.same(over.slice(0, 5), [], `no call carried more than ${MAX_SCRIPT_ARGS} arguments (largest: ${Math.max(...calls.map((c) => c.args))})`)
    })
  }
}

/** No per-post message limit: the stores themselves must bound their work. */
const UNLIMITED = { limits: { max_messages_per_post: 0 } }

t.test('max_messages_per_post: 1,000 by default', async (t) => {
  const m = await startMissive(t)
  const c = zaqarClient(m.baseUrl, { project: randomProject('per-post') })
  const r = await postRawResponse(c, 'q', tiny(1001))
  t.equal(r.status, 400, 'a post of 1,001 messages is refused')
  t.match(r.json, { title: String, description: /No more than 1000 messages/ })
  t.equal((await postRaw(c, 'q', tiny(1000))).length, 1000, 'a post of 1,000 is stored')
})

t.test('sqlite (embedded store)', async (t) => {
  const m = await startMissive(t, { config: UNLIMITED })
  await suite(t, m.baseUrl)
})

t.test('redis pool', async (t) => {
  const server = await startRedis(t)
  const m = await startMissive(t, { env: { MISSIVE_DEFAULT_POOL: `${server.url}?verify=false` }, config: UNLIMITED })
  await suite(t, m.baseUrl, server.port)
})
