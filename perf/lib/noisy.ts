/**
 * The noisy-neighbour scenario (issue 11 item 1): one project ("attacker") loads a queue with a
 * backlog of delayed messages — posts of tiny messages, as many per post as allowed (20,000 fit
 * in the 256 KiB post limit; `max_messages_per_post` allows 1,000 by default) — then keeps
 * listing that queue and posting more such batches, while another
 * project ("victim") on the same pool runs a steady open loop: posts of one message at `rate`
 * per second, plus a claim-and-delete consumer. What is measured is the victim's latency per
 * request type: the target is p99 ≤ 10 ms, whatever the attacker does (docs/benchmarks.md).
 *
 * Open loop: every victim request has a scheduled send time and its latency counts from that
 * time, so a stall that delays later requests is charged to them too (no coordinated omission).
 */
import { randomUUID } from 'node:crypto'
import { HttpConnection, type HttpResponse } from './http-client.js'
import type { LatencySummary } from './stats.js'
import { OpStats, round } from './stats.js'

export interface NoisyOptions {
  url: string
  /** Delayed messages the attacker loads before the measured window. */
  backlog: number
  /** Messages per attacker post (tiny ones, so the post stays under 256 KiB; ≤ max_messages_per_post). */
  batch: number
  /** Victim posts per second (one message each). */
  rate: number
  /** Seconds of the measured window. */
  durationS: number
  /** Attacker connections that list the backlogged queue in a closed loop. */
  listers: number
  /**
   * Requests per second of each attacker connection (listers and the poster); 0: closed loops,
   * as fast as the service answers. A paced attacker shows what each of its requests costs the
   * victim; a closed-loop one also measures how much volume one project can take from others.
   */
  attackRate?: number
  log: (msg: string) => void
}

export interface NoisyResult {
  /** Requests per second of each attacker connection; 0 or absent: closed loops. */
  attackRate?: number
  backlog: number
  batch: number
  rate: number
  seconds: number
  /** Victim latency per request type, the victim alone (same start-up, before the attack). */
  victimAlone: Record<string, LatencySummary>
  /** Victim latency per request type, under attack. */
  victim: Record<string, LatencySummary>
  /** Attacker latency per request type (for context: the attacker's own requests may be slow). */
  attacker: Record<string, LatencySummary>
}

const ATTACKER = 'noisy-attacker'
const VICTIM = 'noisy-victim'

function head(method: string, path: string, project: string, clientId: string, host: string, json: boolean): string {
  return `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nClient-ID: ${clientId}\r\nX-Project-ID: ${project}${json ? '\r\nContent-Type: application/json' : ''}`
}

/** `n` messages of ~12 bytes of JSON each: `{"body":1},`. */
function tinyBatch(n: number): Buffer {
  return Buffer.from(`{"messages":[${new Array<string>(n).fill('{"body":1}').join(',')}]}`)
}

export async function runNoisy(o: NoisyOptions): Promise<NoisyResult> {
  const u = new URL(o.url)
  const host = u.host
  const port = Number(u.port)
  const conn = (timeoutMs = 60_000): HttpConnection => new HttpConnection(u.hostname, port, timeoutMs)
  const aClient = randomUUID()
  const vClient = randomUUID()
  const must = async (r: Promise<HttpResponse>, what: string, ok: number[]): Promise<HttpResponse> => {
    const res = await r
    if (!ok.includes(res.status)) throw new Error(`noisy: ${what} answered ${res.status}: ${res.body.toString().slice(0, 200)}`)
    return res
  }

  // Setup: the attacker's queue delays every message by default, so listings (which then skip
  // delayed messages) must walk past the whole backlog to find anything.
  const setup = conn(120_000)
  await must(setup.request(head('PUT', '/v2/queues/flood', ATTACKER, aClient, host, true), Buffer.from('{"_default_message_delay":900}')), 'create flood', [201, 204])
  await must(setup.request(head('PUT', '/v2/queues/calm', VICTIM, vClient, host, true), Buffer.from('{}')), 'create calm', [201, 204])
  const big = tinyBatch(o.batch)
  o.log(`noisy: loading ${o.backlog} delayed messages in posts of ${o.batch} (${Math.round(big.length / 1024)} KiB each) …`)
  for (let n = 0; n < o.backlog; n += o.batch) {
    await must(setup.request(head('POST', '/v2/queues/flood/messages', ATTACKER, aClient, host, true), big), 'backlog post', [201])
  }
  setup.close()

  const attacked = new Map<string, OpStats>()
  let victim = attacked
  const attacker = new Map<string, OpStats>()
  const stat = (m: Map<string, OpStats>, name: string): OpStats => {
    let s = m.get(name)
    if (s === undefined) m.set(name, (s = new OpStats()))
    return s
  }
  let measuring = false
  let stop = false
  const timed = async (m: Map<string, OpStats>, name: string, since: number, r: Promise<HttpResponse>, ok: number[]): Promise<HttpResponse | null> => {
    try {
      const res = await r
      if (measuring) stat(m, name).record((performance.now() - since) * 1000, ok.includes(res.status), res.status)
      return res
    } catch {
      if (measuring) stat(m, name).record((performance.now() - since) * 1000, false, 'error')
      return null
    }
  }

  const attackers: Promise<void>[] = []
  const attackRate = o.attackRate ?? 0
  /** Runs `one` in a closed loop, or paced at `attackRate` a second when that is set. */
  const attackLoop = async (one: () => Promise<unknown>): Promise<void> => {
    for (let next = performance.now(); !stop; ) {
      await one()
      if (attackRate > 0) {
        next += 1000 / attackRate
        const wait = next - performance.now()
        if (wait > 0) await new Promise((r) => setTimeout(r, wait))
      }
    }
  }
  const startAttackers = (): void => {
    // Attacker: listers in a closed loop, one poster of big batches in a closed loop.
    const listPath = '/v2/queues/flood/messages?limit=20'
    for (let i = 0; i < o.listers; i++) {
      attackers.push(
        (async () => {
          const c = conn()
          await attackLoop(() => timed(attacker, 'list', performance.now(), c.request(head('GET', listPath, ATTACKER, aClient, host, false)), [200]))
          c.close()
        })(),
      )
    }
    attackers.push(
      (async () => {
        const c = conn()
        await attackLoop(() => timed(attacker, `post${o.batch}`, performance.now(), c.request(head('POST', '/v2/queues/flood/messages', ATTACKER, aClient, host, true), big), [201]))
        c.close()
      })(),
    )
    if (o.batch < 20_000) {
      // And the most a 256 KiB post can carry, refused (400) by max_messages_per_post, 10 a
      // second: the proxy still parses each one (~5 ms). Paced, not a closed loop: back to back,
      // they would measure how many requests saturate the proxy's core, not what one costs others.
      const huge = tinyBatch(20_000)
      attackers.push(
        (async () => {
          const c = conn()
          for (let next = performance.now(); !stop; next += 100) {
            await timed(attacker, 'post20000 (refused)', performance.now(), c.request(head('POST', '/v2/queues/flood/messages', ATTACKER, aClient, host, true), huge), [400])
            const wait = next + 100 - performance.now()
            if (wait > 0) await new Promise((r) => setTimeout(r, wait))
          }
          c.close()
        })(),
      )
    }
  }

  // Victim: open loop of one-message posts at `rate`, and a consumer claiming 10 then deleting
  // them (by ids) at rate / 10 — so messages flow through, 1:1 in and out.
  const idle: HttpConnection[] = []
  const all: HttpConnection[] = []
  const take = (): HttpConnection => {
    const c = idle.pop()
    if (c !== undefined) return c
    const n = conn()
    all.push(n)
    return n
  }
  const postOne = Buffer.from('{"messages":[{"body":{"event":"victim"},"ttl":300}]}')
  const claimBody = Buffer.from('{"ttl":60,"grace":60}')
  const inflight = new Set<Promise<void>>()
  const send = (fn: (c: HttpConnection) => Promise<void>): void => {
    const c = take()
    const p = fn(c).finally(() => {
      idle.push(c)
      inflight.delete(p)
    })
    inflight.add(p)
  }
  const postVictim = (at: number) => (c: HttpConnection) =>
    timed(victim, 'post1', at, c.request(head('POST', '/v2/queues/calm/messages', VICTIM, vClient, host, true), postOne), [201]).then(() => undefined)
  const consume = (at: number) => async (c: HttpConnection) => {
    const res = await timed(victim, 'claim10', at, c.request(head('POST', '/v2/queues/calm/claims?limit=10', VICTIM, vClient, host, true), claimBody), [201, 204])
    if (res === null || res.status !== 201) return
    const ids = (JSON.parse(res.body.toString()) as { messages: { href: string }[] }).messages.map((m) => m.href.slice(m.href.lastIndexOf('/') + 1).split('?')[0])
    await timed(victim, 'delete10', performance.now(), c.request(head('DELETE', `/v2/queues/calm/messages?ids=${ids.join(',')}`, VICTIM, vClient, host, false)), [204])
  }

  /** The victim's open loop for `warmS` + `seconds`, recorded into `into` after the warm-up. */
  const victimLoop = async (into: Map<string, OpStats>, warmS: number, seconds: number): Promise<void> => {
    victim = into
    const start = performance.now()
    const interval = 1000 / o.rate
    const end = start + (warmS + seconds) * 1000
    for (let k = 0; ; k++) {
      const at = start + k * interval
      if (at >= end) break
      const wait = at - performance.now()
      if (wait > 1) await new Promise((r) => setTimeout(r, wait))
      if (!measuring && at >= start + warmS * 1000) measuring = true
      send(postVictim(at))
      if (k % 10 === 5) send(consume(at))
    }
    measuring = false
    await Promise.allSettled([...inflight])
  }

  // First the victim alone (the machine's own floor, same conditions), then under attack.
  const aloneS = Math.max(3, Math.round(o.durationS / 3))
  const alone = new Map<string, OpStats>()
  o.log(`noisy: victim alone, ${o.rate} posts/s + claims, ${aloneS} s …`)
  await victimLoop(alone, 2, aloneS)
  o.log(`noisy: attacker on (${o.listers} listers, 1 poster of ${o.batch}); victim measured ${o.durationS} s after 2 s …`)
  startAttackers()
  await victimLoop(attacked, 2, o.durationS)
  stop = true
  await Promise.allSettled(attackers)
  for (const c of all) c.close()
  const summarize = (m: Map<string, OpStats>): Record<string, LatencySummary> =>
    Object.fromEntries([...m].map(([name, s]) => [name, s.summary(o.durationS)]))
  const summarizeFor = (m: Map<string, OpStats>, seconds: number): Record<string, LatencySummary> =>
    Object.fromEntries([...m].map(([name, s]) => [name, s.summary(seconds)]))
  return {
    ...(attackRate > 0 && { attackRate }),
    backlog: o.backlog,
    batch: o.batch,
    rate: o.rate,
    seconds: round(o.durationS, 1),
    victimAlone: summarizeFor(alone, aloneS),
    victim: summarize(attacked),
    attacker: summarize(attacker),
  }
}

/** The result as Markdown lines (a table per side). */
export function noisyMarkdown(store: string, r: NoisyResult): string {
  const rows = (m: Record<string, LatencySummary>): string =>
    Object.entries(m)
      .map(([name, s]) => `| ${name} | ${s.count} | ${s.p50} | ${s.p99} | ${s.max} | ${Object.entries(s.failures).map(([k, v]) => `${k}×${v}`).join(' ') || '—'} |`)
      .join('\n')
  return [
    `### Noisy neighbour — ${store}`,
    '',
    `Attacker: ${r.backlog.toLocaleString('en-US')} delayed messages loaded, then listing it (2 connections) and posting ${r.batch.toLocaleString('en-US')}-message batches ${r.attackRate ? `(each connection paced at ${r.attackRate} requests/s)` : 'without pause'}, plus 10/s posts of 20,000 messages (refused). ` +
      `Victim (another project, same pool): ${r.rate} one-message posts/s (open loop) plus claim 10 + bulk delete at ${r.rate / 10}/s; first alone, then ${r.seconds} s under attack. Target: victim p99 ≤ 10 ms under attack; "alone" is this machine's floor at the time.`,
    '',
    '| victim request, alone | count | p50 ms | p99 ms | max ms | failures |',
    '|---|---:|---:|---:|---:|---|',
    rows(r.victimAlone ?? {}),
    '',
    '| victim request, under attack | count | p50 ms | p99 ms | max ms | failures |',
    '|---|---:|---:|---:|---:|---|',
    rows(r.victim),
    '',
    '| attacker request | count | p50 ms | p99 ms | max ms | failures |',
    '|---|---:|---:|---:|---:|---|',
    rows(r.attacker),
    '',
  ].join('\n')
}
