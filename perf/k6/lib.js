// Shared helpers for the k6 scenarios: the same Zaqar v2 requests as the Node load runner
// (perf/lib/zaqar.ts). Configure with environment variables, e.g.
//   k6 run -e BASE_URL=http://127.0.0.1:8888 -e BATCH=10 -e VUS=32 perf/k6/producers.js
import http from 'k6/http'
import { check } from 'k6'

function int(v, d) {
  const n = parseInt(v, 10)
  return Number.isFinite(n) ? n : d
}

export const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:8888'
export const VUS = int(__ENV.VUS, 32)
export const DURATION = __ENV.DURATION || '10s'
/** Open loop: messages/s each way (0 = closed loop, VUS looping as fast as they can). */
export const RATE = int(__ENV.RATE, 0)
export const BATCH = int(__ENV.BATCH, 10)
export const CLAIM_LIMIT = int(__ENV.CLAIM_LIMIT, 10)
/** bulk: DELETE ?ids=… ; single: DELETE <href>?claim_id=… per message. */
export const DELETE_MODE = __ENV.DELETE_MODE || 'bulk'
export const SIZE = int(__ENV.SIZE, 200)
export const QUEUES = int(__ENV.QUEUES, 4)
export const TENANTS = int(__ENV.TENANTS, 1)
export const PREFIX = __ENV.PREFIX || 'bench'

/** A random v4 UUID (Client-ID must be one). */
export function uuid4() {
  const h = '0123456789abcdef'
  let s = ''
  for (let i = 0; i < 36; i++) {
    if (i === 8 || i === 13 || i === 18 || i === 23) s += '-'
    else if (i === 14) s += '4'
    else if (i === 19) s += h[8 + Math.floor(Math.random() * 4)]
    else s += h[Math.floor(Math.random() * 16)]
  }
  return s
}

// The init context runs once per VU: one Client-ID per VU, like one per connection in Node.
const CLIENT_ID = uuid4()

export function target(i) {
  const q = i % QUEUES
  return { project: `${PREFIX}-t${q % TENANTS}`, queue: `${PREFIX}-q${q}` }
}

/** The queue for this VU's next iteration: VUs and iterations spread over all queues. */
export function pick() {
  return target(__VU * 7919 + __ITER)
}

function params(t, op) {
  return {
    headers: { 'Client-ID': CLIENT_ID, 'X-Project-ID': t.project, 'Content-Type': 'application/json' },
    tags: { op },
  }
}

export function messagesBody(batch, size) {
  const msgs = []
  for (let i = 0; i < batch; i++) {
    const base = JSON.stringify({ ttl: 3600, body: { event: 'bench', seq: i, pad: '' } }).length
    msgs.push({ ttl: 3600, body: { event: 'bench', seq: i, pad: 'x'.repeat(Math.max(0, size - base)) } })
  }
  return JSON.stringify({ messages: msgs })
}

const POST_BODY = messagesBody(BATCH, SIZE)

export function post(t) {
  const r = http.post(`${BASE_URL}/v2/queues/${t.queue}/messages`, POST_BODY, params(t, 'post'))
  check(r, { 'post 201': (x) => x.status === 201 })
  return r
}

/** Claims up to CLAIM_LIMIT messages; returns [{id, href}] (empty on 204). */
export function claim(t) {
  const r = http.post(`${BASE_URL}/v2/queues/${t.queue}/claims?limit=${CLAIM_LIMIT}`, '{"ttl":60,"grace":60}', params(t, 'claim'))
  check(r, { 'claim 201/204': (x) => x.status === 201 || x.status === 204 })
  if (r.status !== 201) return []
  return r.json().messages.map((m) => ({ id: m.id, href: m.href }))
}

export function deleteClaimed(t, msgs) {
  if (msgs.length === 0) return
  if (DELETE_MODE === 'single') {
    for (const m of msgs) {
      const r = http.del(`${BASE_URL}${m.href}`, null, params(t, 'delete1'))
      check(r, { 'delete 204': (x) => x.status === 204 })
    }
  } else {
    const ids = msgs.map((m) => m.id).join(',')
    const r = http.del(`${BASE_URL}/v2/queues/${t.queue}/messages?ids=${ids}`, null, params(t, 'delete'))
    check(r, { 'delete 204': (x) => x.status === 204 })
  }
}

export function list(t) {
  const r = http.get(`${BASE_URL}/v2/queues/${t.queue}/messages?limit=10&echo=true`, params(t, 'list'))
  check(r, { 'list 200': (x) => x.status === 200 })
  return r
}

/**
 * One k6 scenario: closed loop (constant-vus) by default; open loop (constant-arrival-rate, one
 * iteration per request batch) when RATE > 0. `perIteration` is how many messages one iteration
 * moves, so RATE stays in messages/s.
 */
export function scenario(exec, vus, perIteration) {
  if (RATE > 0) {
    return {
      executor: 'constant-arrival-rate',
      exec,
      rate: Math.max(1, Math.round(RATE / perIteration)),
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: vus,
      maxVUs: vus * 4,
    }
  }
  return { executor: 'constant-vus', exec, vus, duration: DURATION }
}

/** The roadmap's latency target on every request type. */
export const thresholds = {
  'http_req_duration{op:post}': ['p(99)<10'],
  'http_req_duration{op:claim}': ['p(99)<10'],
  'http_req_duration{op:delete}': ['p(99)<10'],
  checks: ['rate>0.99'],
}
