/**
 * The Zaqar v2 requests the load runner sends: headers (Client-ID, X-Project-ID), paths, and
 * message bodies of a chosen size. Queue i lives in project `<prefix>-t<i % tenants>` and is
 * named `<prefix>-q<i>`.
 */
import { randomUUID } from 'node:crypto'

export interface Target {
  project: string
  queue: string
}

export function targets(queues: number, tenants: number, prefix = 'bench'): Target[] {
  const out: Target[] = []
  for (let i = 0; i < queues; i++) out.push({ project: `${prefix}-t${i % tenants}`, queue: `${prefix}-q${i}` })
  return out
}

/** Everything one connection sends: its own Client-ID. */
export class ZaqarRequests {
  readonly clientId = randomUUID()
  readonly host: string
  readonly postBody: Buffer
  readonly claimBody = Buffer.from('{"ttl":60,"grace":60}')

  constructor(host: string, batch: number, size: number) {
    this.host = host
    this.postBody = messagesBody(batch, size)
  }

  #head(method: string, path: string, t: Target, json: boolean): string {
    return (
      `${method} ${path} HTTP/1.1\r\nHost: ${this.host}\r\nClient-ID: ${this.clientId}\r\nX-Project-ID: ${t.project}` +
      (json ? '\r\nContent-Type: application/json' : '')
    )
  }

  post(t: Target): [string, Buffer] {
    return [this.#head('POST', `/v2/queues/${t.queue}/messages`, t, true), this.postBody]
  }

  claim(t: Target, limit: number): [string, Buffer] {
    return [this.#head('POST', `/v2/queues/${t.queue}/claims?limit=${limit}`, t, true), this.claimBody]
  }

  /** Bulk delete by ids (zaqar/transport/wsgi/v2_0/messages.py: claimed messages are deleted without a claim check). */
  deleteIds(t: Target, ids: string[]): string {
    return this.#head('DELETE', `/v2/queues/${t.queue}/messages?ids=${ids.join(',')}`, t, false)
  }

  /** Single delete by the href a claim returned (`…/messages/<id>?claim_id=<cid>`). */
  deleteHref(t: Target, href: string): string {
    return this.#head('DELETE', href, t, false)
  }

  /** PUT /v2/queues/q (201 created, 204 already there). */
  createQueue(t: Target): [string, Buffer] {
    return [this.#head('PUT', `/v2/queues/${t.queue}`, t, true), Buffer.from('{}')]
  }

  list(t: Target, limit: number): string {
    return this.#head('GET', `/v2/queues/${t.queue}/messages?limit=${limit}&echo=true`, t, false)
  }
}

/** A POST body with `batch` messages whose JSON is about `size` bytes each. */
export function messagesBody(batch: number, size: number): Buffer {
  const one = (i: number): string => {
    const base = JSON.stringify({ ttl: 3600, body: { event: 'bench', seq: i, pad: '' } })
    const pad = 'x'.repeat(Math.max(0, size - base.length))
    return JSON.stringify({ ttl: 3600, body: { event: 'bench', seq: i, pad } })
  }
  return Buffer.from(`{"messages":[${Array.from({ length: batch }, (_, i) => one(i)).join(',')}]}`)
}

export interface ClaimedMessage {
  id: string
  href: string
}

/** The messages of a 201 claim response (empty for 204). */
export function claimedMessages(body: Buffer): ClaimedMessage[] {
  if (body.length === 0) return []
  const parsed = JSON.parse(body.toString('utf8')) as { messages?: { id: string; href: string }[] }
  return (parsed.messages ?? []).map((m) => ({ id: m.id, href: m.href }))
}

/** How many messages a 201 POST response says were stored. */
export function postedCount(body: Buffer): number {
  // Count the hrefs without parsing the whole document.
  let n = 0
  let i = -1
  const needle = Buffer.from('/messages/')
  while ((i = body.indexOf(needle, i + 1)) >= 0) n++
  return n
}
