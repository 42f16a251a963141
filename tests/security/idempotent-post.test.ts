/**
 * Safe retries of POST …/messages (issue 11 item 9; docs/api.md, "Safe retries"): a post with an
 * `Idempotency-Key` retried within the window answers the original 201 — same resources, same
 * Location — and stores nothing new, whatever the retry's body; and the real faults that answer
 * 503 although the messages were stored (a stopped worker, a Redis paused past the command
 * timeout) are made harmless by retrying with the key. Whole service, on the embedded SQLite
 * store and on a Redis pool.
 */
import t, { type Test } from 'tap'
import { POST_CHUNK } from '../../shared/storage/contract.js'
import { alive, startMissive, startRedis, waitFor, type MissiveProcess } from '../helpers/index.js'
import { bad503, idFromHref, randomProject, zaqarClient, type HttpResp, type ZaqarClient } from '../helpers/http.js'

/** How long the proxy waits for a worker (config `rpcTimeoutMs`): short, for the stopped-worker case. */
const RPC_TIMEOUT_MS = 2000
/** The Redis pool's command timeout: short, for the paused-Redis case. */
const COMMAND_TIMEOUT_MS = 1000

const messages = (n: number, tag: string) => ({ messages: Array.from({ length: n }, (_, i) => ({ body: { tag, i }, ttl: 600 })) })

async function post(c: ZaqarClient, q: string, body: unknown, key?: string): Promise<HttpResp> {
  return c.req('POST', `/v2/queues/${q}/messages`, { body, ...(key !== undefined && { headers: { 'Idempotency-Key': key } }), timeoutMs: 20_000 })
}

/**
 * `send` again while it answers 503 with Retry-After, as a client does: after a store fault the
 * pool's circuit breaker may open late (a check that timed out while the store caught up with
 * its backlog, on a loaded machine) and refuse calls at once until its next check succeeds
 * (proxy/circuit-breaker.ts). Anything else, or the 503s outlasting 15 s, is returned as it is.
 */
async function served(send: () => Promise<HttpResp>): Promise<HttpResp> {
  let last: HttpResp | undefined
  const retryable = (r: HttpResp) => r.status === 503 && bad503(r) === null
  await waitFor(async () => !retryable((last = await send())), { timeoutMs: 15_000, intervalMs: 100, what: 'the pool to serve again' }).catch(() => undefined)
  return last!
}

async function total(c: ZaqarClient, q: string): Promise<number> {
  const r = await served(() => c.req('GET', `/v2/queues/${q}/stats`))
  if (r.status !== 200) throw new Error(`stats: ${r.status} ${r.text}`)
  return r.json.messages.total as number
}

/** Every message id of the queue, in order (claimed and own ones included). */
async function allIds(c: ZaqarClient, q: string): Promise<string[]> {
  const out: string[] = []
  let path: string | undefined = `/v2/queues/${q}/messages?echo=true&include_claimed=true&limit=20`
  for (let pages = 0; path !== undefined && pages < 1000; pages++) {
    const r = await c.req('GET', path)
    if (r.status !== 200) throw new Error(`list: ${r.status} ${r.text}`)
    out.push(...(r.json.messages as { id: string }[]).map((m) => m.id))
    path = (r.json.links as { rel: string; href: string }[]).find((l) => l.rel === 'next')?.href
  }
  return out
}

const idsOf = (r: HttpResp): string[] => (r.json?.resources ?? []).map(idFromHref)

async function behaviour(t: Test, m: MissiveProcess): Promise<void> {
  const c = zaqarClient(m.baseUrl, { project: randomProject('idem') })

  await t.test('a retry with the same key answers the original 201 and stores nothing', async (t) => {
    const first = await post(c, 'orders', messages(3, 'first'), 'order-42')
    t.equal(first.status, 201)
    const ids = idsOf(first)
    t.equal(ids.length, 3)
    const retry = await post(c, 'orders', messages(3, 'first'), 'order-42')
    t.equal(retry.status, 201, 'the retry is a 201 too')
    t.same(retry.json, first.json, 'same resources')
    t.equal(retry.headers.get('location'), first.headers.get('location'), 'same Location')
    const other = await post(c, 'orders', messages(5, 'different'), 'order-42')
    t.same(idsOf(other), ids, 'a different body under the same key: the original answer (as SQS does)')
    t.equal(await total(c, 'orders'), 3, 'one copy stored')
    t.same(await allIds(c, 'orders'), ids)

    const elsewhere = await post(c, 'orders-eu', messages(3, 'first'), 'order-42')
    t.equal(elsewhere.status, 201)
    t.equal(idsOf(elsewhere).filter((id) => ids.includes(id)).length, 0, 'a key is scoped to its queue')
    const stranger = zaqarClient(m.baseUrl, { project: randomProject('idem-other') })
    const theirs = await post(stranger, 'orders', messages(3, 'first'), 'order-42')
    t.equal(idsOf(theirs).filter((id) => ids.includes(id)).length, 0, 'and to its project')
    const plain = await post(c, 'orders', messages(3, 'first'))
    t.equal(plain.status, 201)
    t.equal(await total(c, 'orders'), 6, 'without a key every post stores')
  })

  await t.test('a large post (stored in chunks) retried with its key', async (t) => {
    const n = POST_CHUNK * 2 + 7
    const first = await post(c, 'bulk', messages(n, 'big'), 'bulk-1')
    t.equal(first.status, 201)
    t.equal(idsOf(first).length, n)
    const retry = await post(c, 'bulk', messages(n, 'big'), 'bulk-1')
    t.same(idsOf(retry), idsOf(first), 'same ids')
    t.equal(await total(c, 'bulk'), n)
    t.same(await allIds(c, 'bulk'), idsOf(first), 'every message once, in post order')
  })

  await t.test('malformed keys are refused with 400, nothing stored', async (t) => {
    for (const key of ['a b', 'x'.repeat(256), 'tab\there']) {
      const r = await post(c, 'refused', messages(1, 'bad'), key)
      t.equal(r.status, 400, JSON.stringify(key.slice(0, 20)))
      t.type(r.json?.title, 'string')
      t.type(r.json?.description, 'string')
    }
    t.equal(await total(c, 'refused'), 0)
  })
}

/** A post sent while `pid` is stopped answers 503, yet is stored once `pid` resumes; the retry with the key finds it. */
async function stoppedMidPost(t: Test, c: ZaqarClient, pid: number, q: string): Promise<void> {
  const before = await total(c, q)
  process.kill(pid, 'SIGSTOP')
  let resumed = false
  t.teardown(() => {
    if (!resumed && alive(pid)) process.kill(pid, 'SIGCONT')
  })
  const lost = await post(c, q, messages(4, 'fault'), 'fault-1')
  process.kill(pid, 'SIGCONT')
  resumed = true
  t.equal(lost.status, 503, 'the client was told 503')
  t.equal(bad503(lost), null, 'a proper 503 (JSON, Retry-After)')
  // The 503 did not mean "not stored": the post was in the stopped process's hands.
  const stored = await waitFor(async () => ((await total(c, q)) === before + 4 ? true : undefined), { timeoutMs: 15_000, what: 'the post behind the 503 to land' })
  t.ok(stored, 'the messages were stored after all')
  const retry = await served(() => post(c, q, messages(4, 'fault'), 'fault-1'))
  t.equal(retry.status, 201, 'the retry with the key succeeds')
  t.equal(await total(c, q), before + 4, 'exactly one copy')
  const ids = await allIds(c, q)
  t.same(ids.slice(-4), idsOf(retry), 'the retry answers the ids that were stored')
}

t.test('sqlite (embedded store)', async (t) => {
  // The stop is shorter than the hung-worker threshold: the worker resumes and finishes the post
  // (a longer stop gets it killed and restarted: tests/faults/hung-worker.test.ts).
  const m = await startMissive(t, { config: { rpcTimeoutMs: RPC_TIMEOUT_MS, workerHungAfterMs: 60_000 } })
  await behaviour(t, m)
  await t.test('worker stopped mid-post: 503 though stored; the retry with the key stores nothing', async (t) => {
    const { workers } = await m.children()
    t.equal(workers.length, 1)
    await stoppedMidPost(t, zaqarClient(m.baseUrl, { project: randomProject('idem-fault') }), workers[0], 'fault')
  })
})

t.test('redis pool', async (t) => {
  const redis = await startRedis(t, { appendfsync: 'always' })
  const m = await startMissive(t, {
    // A worker process (stopped mid-post below), whatever "auto" would choose on this host.
    env: { MISSIVE_DEFAULT_POOL: `${redis.url}?durability=durable&command_timeout=${COMMAND_TIMEOUT_MS}`, MISSIVE_WORKERS: '1' },
    config: { rpcTimeoutMs: RPC_TIMEOUT_MS * 3, workerHungAfterMs: 60_000 },
  })
  await behaviour(t, m)
  await t.test('redis-server paused past the command timeout: 503 though stored; the retry stores nothing', async (t) => {
    await stoppedMidPost(t, zaqarClient(m.baseUrl, { project: randomProject('idem-fault') }), redis.pid, 'fault')
  })
  await t.test('worker stopped mid-post: same', async (t) => {
    const { workers } = await m.children()
    t.equal(workers.length, 1)
    await stoppedMidPost(t, zaqarClient(m.baseUrl, { project: randomProject('idem-fault') }), workers[0], 'fault2')
  })
})
