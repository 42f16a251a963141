// Random frames against the WebSocket API (fast-check): every frame — any action name, any body,
// text or MessagePack — is answered, never with a 5xx, and the proxy keeps serving.
import fc from 'fast-check'
import t from 'tap'
import { encode } from '@msgpack/msgpack'
import { startHarness } from '../http/harness.js'
import { WsClient } from './client.js'
import { ACTIONS } from '../../proxy/websocket-actions.js'

const NAMES = [...Object.keys(ACTIONS), 'authenticate', 'subscription_create', 'subscription_list', 'subscription_get', 'subscription_delete', 'toString', 'nope']

t.test('random frames: always answered, never a 5xx', async (t) => {
  const h = await startHarness(t)
  const c = await WsClient.open(`${h.base.replace(/^http/, 'ws')}/v2/ws`, h.project)
  t.teardown(() => c.close())
  const value = fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 3 }), fc.dictionary(fc.string(), fc.integer(), { maxKeys: 3 }))
  const body = fc.record(
    {
      queue_name: fc.oneof(fc.constant('fz'), fc.string(), fc.integer()),
      message_id: fc.oneof(fc.string(), fc.integer()),
      claim_id: fc.oneof(fc.string(), fc.integer()),
      subscription_id: fc.string(),
      messages: fc.oneof(fc.array(fc.record({ body: value, ttl: fc.oneof(fc.integer(), fc.string()) }), { maxLength: 3 }), value),
      message_ids: fc.oneof(fc.array(fc.string(), { maxLength: 3 }), value),
      limit: value,
      marker: value,
      ttl: value,
      grace: value,
      pop: value,
      // Never a real wait (1..20 would park the request): 0, or values the route refuses.
      // (a digit string such as "15" is a real wait too: strings are kept non-numeric).
      wait: fc.oneof(fc.constant(0), fc.string().filter((x) => !/^\s*[+-]?\d+\s*$/.test(x)), fc.integer({ min: 21 }), fc.integer({ max: -1 })),
      metadata: value,
      subscriber: value,
    },
    { requiredKeys: [] },
  )
  // Real action names and good headers weigh more, so that a fair share of frames reach the
  // actions themselves (2xx) rather than stop at the frame checks: with equal weights a run of
  // 300 sometimes saw only 400s and 404s.
  const headers = fc.oneof(
    { arbitrary: fc.constant({ 'Client-ID': c.clientId, 'X-Project-ID': c.project }), weight: 4 },
    { arbitrary: fc.constant(undefined), weight: 1 },
    { arbitrary: value, weight: 1 },
  )
  const action = fc.oneof({ arbitrary: fc.constantFrom(...NAMES), weight: 3 }, { arbitrary: value, weight: 1 })
  const frame = fc.record({ action, headers, body: fc.oneof(body, value) }, { requiredKeys: [] })
  const statuses = new Set<number>()
  await fc.assert(
    fc.asyncProperty(frame, fc.boolean(), async (f, binary) => {
      const before = c.answers.length
      if (binary) c.raw(encode(f), true)
      else c.raw(JSON.stringify(f))
      await c.until(() => c.answers.length > before, 'an answer')
      const status = c.answers[before]!.headers.status
      statuses.add(status)
      return status < 500
    }),
    { numRuns: 300 },
  )
  t.ok(statuses.size > 2, `several outcomes (${[...statuses].sort().join(', ')})`)
  t.equal((await c.send('queue_create', { queue_name: 'after' })).headers.status, 201, 'still serving')
})
