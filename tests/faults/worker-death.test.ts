/**
 * A worker that dies (or hangs) mid-request: the proxy answers every request it holds with 503 +
 * Retry-After and a JSON {title, description} — promptly, never a hung request — and serves
 * normally again once the worker is back.
 */
import t from 'tap'
import { alive, startMissive, waitFor } from '../helpers/index.js'
import { bad503, randomProject, zaqarClient, type HttpResp, type ZaqarClient } from '../helpers/http.js'

/** How long the proxy waits for a worker (config `rpcTimeoutMs`), short for the hang case. */
const RPC_TIMEOUT_MS = 4000
const OK = new Set([200, 201, 204])

interface Outcome {
  op: number
  /** ms since the load started. */
  started: number
  r?: HttpResp
  err?: string
}

/** Runs one request, recording its answer or its client-side failure. */
async function attempt(op: number, fn: () => Promise<HttpResp>, t0: number): Promise<Outcome> {
  const o: Outcome = { op, started: performance.now() - t0 }
  try {
    o.r = await fn()
  } catch (err) {
    o.err = `${(err as Error).name}: ${(err as Error).message} ${((err as Error).cause as Error | undefined)?.message ?? ''}`
  }
  return o
}

/** What is wrong with each outcome: a client error, a slow answer, or anything but 2xx / a proper 503. */
function problems(outcomes: Outcome[], maxMs: number, killedAt: number): string[] {
  const out: string[] = []
  for (const o of outcomes) {
    const what = `op ${o.op} started at ${Math.round(o.started)} ms (kill at ${Math.round(killedAt)} ms)`
    if (o.err !== undefined) {
      out.push(`${what}: ${o.err}`)
      continue
    }
    const r = o.r!
    if (r.ms > maxMs) out.push(`${what}: took ${Math.round(r.ms)} ms`)
    if (OK.has(r.status)) continue
    const problem = bad503(r)
    if (problem !== null) out.push(`${what}: ${problem}`)
  }
  return out
}

function operations(c: ZaqarClient, q: string): (() => Promise<HttpResp>)[] {
  const pad = 'y'.repeat(20_000)
  return [
    () => c.req('GET', `${q}/messages?echo=true&include_claimed=true&limit=20`),
    () => c.req('POST', `${q}/messages`, { body: { messages: [{ body: { pad } }, { body: { pad } }, { body: { pad } }] } }),
    () => c.req('POST', `${q}/claims?limit=20`, { body: { ttl: 60, grace: 60 } }),
    () => c.req('GET', `${q}/stats`),
    () => c.req('DELETE', `${q}/messages?pop=2`),
  ]
}

t.test('a worker that dies or hangs mid-request: 503 + Retry-After, never a hung request', async (t) => {
  // A pause shorter than workerHungAfterMs is waited out, not restarted (hung-worker.test.ts covers a longer one).
  const m = await startMissive(t, { config: { rpcTimeoutMs: RPC_TIMEOUT_MS, workerHungAfterMs: 60_000 } })
  const c = zaqarClient(m.baseUrl, { project: randomProject('worker-death'), timeoutMs: 20_000 })
  const q = '/v2/queues/heavy'
  const pad = 'y'.repeat(20_000)
  // Biggish messages make list and claim answers long-ish (about 400 KB each).
  for (let i = 0; i < 10; i++) {
    const r = await c.req('POST', `${q}/messages`, { body: { messages: Array.from({ length: 4 }, (_, n) => ({ body: { i, n, pad } })) } })
    t.equal(r.status, 201, `prefill ${i}`)
  }
  const ops = operations(c, q)

  await t.test('SIGKILL under load', async (t) => {
    const { workers } = await m.children()
    t.equal(workers.length, 1, 'one worker')
    const outcomes: Outcome[] = []
    let stop = false
    let seq = 0
    const t0 = performance.now()
    const lanes = Array.from({ length: 8 }, async () => {
      while (!stop) {
        const op = seq++ % ops.length
        outcomes.push(await attempt(op, ops[op], t0))
      }
    })
    await waitFor(() => outcomes.filter((o) => o.r !== undefined && OK.has(o.r.status)).length >= 20, { what: 'the steady load to be served' })
    // A burst on top of the steady load (8 requests always in flight), so that calls are queued
    // in the worker at the kill.
    const burst = Array.from({ length: 20 }, (_, i) => attempt(i % 2 === 0 ? 0 : 2, ops[i % 2 === 0 ? 0 : 2], t0))
    const killedAt = performance.now() - t0
    process.kill(workers[0], 'SIGKILL')
    await waitFor(async () => {
      const now = await m.children()
      return now.workers.length === 1 && now.workers[0] !== workers[0]
    }, { timeoutMs: 20_000, what: 'the supervisor to restart the worker' })
    t.notOk(alive(workers[0]), 'the old worker is gone')
    // The new worker needs a moment to load and the proxy to reconnect; the load keeps running.
    await waitFor(async () => (await c.req('GET', `${q}/stats`)).status === 200, { timeoutMs: 20_000, what: 'requests to succeed again' })
    t.comment(`worker killed at ${Math.round(killedAt)} ms, serving again at ${Math.round(performance.now() - t0)} ms`)
    // The load keeps running until it has been served again for a while (16 answers).
    const recovered = outcomes.length
    await waitFor(() => outcomes.slice(recovered).filter((o) => o.r !== undefined && OK.has(o.r.status)).length >= 16, { what: 'the load to be served again' })
    stop = true
    outcomes.push(...(await Promise.all(burst)))
    await Promise.all(lanes)

    t.ok(outcomes.filter((o) => o.started < killedAt).length >= 20, 'requests were under way before the kill')
    t.same(problems(outcomes, 8000, killedAt), [], `all ${outcomes.length} requests answered promptly with 2xx or a proper 503`)
    const unavailable = outcomes.filter((o) => o.r?.status === 503)
    t.ok(unavailable.length > 0, `the outage was visible: ${unavailable.length} requests got 503`)
    // Sent while the worker was up, answered 503: these were in the dying worker's hands.
    const midRequest = unavailable.filter((o) => o.started < killedAt).length
    t.ok(midRequest > 0, `requests sent before the kill got 503 (${midRequest})`)

    const after = await Promise.all(ops.flatMap((op) => [op(), op()]))
    t.same(after.filter((r) => !OK.has(r.status)).map((r) => `${r.status} ${r.text.slice(0, 200)}`), [], 'after the restart every request succeeds')
  })

  await t.test('SIGSTOP (a hung worker): 503 after rpcTimeoutMs, then normal service on SIGCONT', async (t) => {
    const { workers } = await m.children()
    t.equal(workers.length, 1, 'one worker')
    process.kill(workers[0], 'SIGSTOP')
    let resumed = false
    t.teardown(() => {
      if (!resumed && alive(workers[0])) process.kill(workers[0], 'SIGCONT')
    })
    const t0 = performance.now()
    const outcomes = await Promise.all(ops.flatMap((op, i) => [attempt(i, op, t0), attempt(i, op, t0)]))
    process.kill(workers[0], 'SIGCONT')
    resumed = true
    t.same(problems(outcomes, RPC_TIMEOUT_MS + 4000, 0), [], 'every request answered within rpcTimeoutMs + slack')
    t.same(
      outcomes.map((o) => o.r?.status),
      outcomes.map(() => 503),
      'all 503 while the worker is stopped',
    )
    t.ok(outcomes.every((o) => (o.r?.ms ?? 0) >= RPC_TIMEOUT_MS - 500), 'after waiting for the worker (not at once)')

    await waitFor(async () => (await c.req('GET', `${q}/stats`)).status === 200, { timeoutMs: 10_000, what: 'service after SIGCONT' })
    const after = await Promise.all(ops.map((op) => op()))
    t.same(after.filter((r) => !OK.has(r.status)).map((r) => `${r.status} ${r.text.slice(0, 200)}`), [], 'after SIGCONT every request succeeds')
    t.equal((await m.children()).workers[0], workers[0], 'the same worker (no restart needed)')
  })
})
