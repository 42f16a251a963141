/**
 * Producers and consumers on one queue through a failover, and the accounting the HA tests
 * assert on afterwards (tests/ha/sentinel.test.ts, tests/ha/cluster.test.ts): which posts were
 * acknowledged (and when), which deletes were acknowledged, which had an unknown outcome; then
 * whether every acknowledged message is there exactly once, and the unavailability window.
 */
import type { Test } from 'tap'
import type { HttpResp } from '../helpers/http.js'
import type { Client } from '../pools/util.js'

/** Load shaping, not synchronisation: a client honouring Retry-After would wait longer. */
const backoff = (): Promise<void> => new Promise((r) => setTimeout(r, 20))

export interface Traffic {
  /** Acknowledged posts: body key → message id. */
  readonly acked: Map<string, string>
  /** When each acknowledged post was answered (performance.now()). */
  readonly okTimes: number[]
  /** Deletes answered 204. */
  readonly consumed: Set<string>
  /** Deletes whose outcome is unknown (503 or no answer). */
  readonly uncertain: Set<string>
  /** Posts refused (503) or unanswered. */
  failures(): number
  /** Stops every producer and consumer and waits for them. */
  stop(): Promise<void>
}

/**
 * Starts `producers` posting one message each (body `{key}`) and `consumers` claiming 5 and
 * deleting them, on `queue` (a path such as `/v2/queues/work`), until `stop()`. A 503 or no
 * answer is expected around a failover; any other failure fails `t`.
 */
export function startTraffic(t: Test, c: Client, queue: string, opts: { producers: number; consumers: number }): Traffic {
  const acked = new Map<string, string>()
  const okTimes: number[] = []
  const consumed = new Set<string>()
  const uncertain = new Set<string>()
  let failures = 0
  let stop = false
  const attempt = (p: Promise<HttpResp>): Promise<HttpResp | undefined> => p.catch(() => undefined)

  const producer = async (p: number): Promise<void> => {
    for (let seq = 0; !stop; seq++) {
      const key = `${p}-${seq}`
      const r = await attempt(c.req('POST', `${queue}/messages`, { body: { messages: [{ body: { key }, ttl: 3600 }] } }))
      if (r?.status === 201) {
        const href = (r.json.resources as string[])[0]!
        acked.set(key, href.slice(href.lastIndexOf('/') + 1))
        okTimes.push(performance.now())
      } else {
        if (r !== undefined && r.status !== 503) t.fail(`post: ${r.status} ${r.text.slice(0, 200)}`)
        failures++
        await backoff()
      }
    }
  }
  const consumer = async (): Promise<void> => {
    while (!stop) {
      const r = await attempt(c.req('POST', `${queue}/claims?limit=5`, { body: { ttl: 60, grace: 60 } }))
      if (r?.status !== 201) {
        if (r !== undefined && r.status !== 204 && r.status !== 503) t.fail(`claim: ${r.status} ${r.text.slice(0, 200)}`)
        await backoff()
        continue
      }
      for (const msg of r.json.messages as { id: string; href: string }[]) {
        const d = await attempt(c.req('DELETE', msg.href))
        if (d?.status === 204) consumed.add(msg.id)
        else uncertain.add(msg.id)
      }
    }
  }
  const running = [...Array.from({ length: opts.producers }, (_, p) => producer(p)), ...Array.from({ length: opts.consumers }, () => consumer())]
  return {
    acked,
    okTimes,
    consumed,
    uncertain,
    failures: () => failures,
    stop: async () => {
      stop = true
      await Promise.all(running)
    },
  }
}

/** The longest stretch without an acknowledged post within a minute after `killedAt` (ms). */
export function unavailability(traffic: Traffic, killedAt: number): number {
  const times = [...traffic.okTimes].sort((a, b) => a - b)
  let window = 0
  for (let i = 1; i < times.length; i++) {
    if (times[i]! > killedAt && times[i - 1]! < killedAt + 60_000) window = Math.max(window, times[i]! - times[i - 1]!)
  }
  return window
}

/**
 * Lists every message left in `queue` and asserts: none listed or stored twice, no acknowledged
 * delete undone. Returns the acknowledged messages that are neither left nor deleted (lost),
 * with the number left.
 */
export async function accountFor(t: Test, c: Client, queue: string, traffic: Traffic): Promise<{ lost: string[]; left: number }> {
  const listed: { id: string; key: string }[] = []
  let path = `${queue}/messages?echo=true&include_claimed=true&limit=20`
  for (let pages = 0; pages < 10_000; pages++) {
    const r = await c.req('GET', path)
    if (r.status !== 200) t.fail(`listing after the failover: ${r.status} ${r.text.slice(0, 200)}`)
    const msgs = (r.json?.messages ?? []) as { id: string; body: { key: string } }[]
    if (msgs.length === 0) break
    for (const msg of msgs) listed.push({ id: msg.id, key: msg.body.key })
    path = (r.json.links as { rel: string; href: string }[]).find((l) => l.rel === 'next')!.href
  }
  const listedIds = new Set(listed.map((x) => x.id))
  t.equal(listedIds.size, listed.length, 'no message listed twice')
  t.equal(new Set(listed.map((x) => x.key)).size, listed.length, 'no post stored twice')
  t.same([...traffic.consumed].filter((id) => listedIds.has(id)), [], 'no acknowledged delete undone')
  const lost = [...traffic.acked.values()].filter((id) => !listedIds.has(id) && !traffic.consumed.has(id) && !traffic.uncertain.has(id))
  return { lost, left: listed.length }
}
