/**
 * The queue policy (shared/storage/queue-policy.ts): every reserved metadata value that matters —
 * missing, zero, negative, not a number — and every decision the stores share.
 */
import t from 'tap'
import type { Metadata } from '../../shared/storage/contract.js'
import {
  claimExtendedTtl,
  claimExtends,
  deleteNeedsClaimLookup,
  deleteVerdict,
  exceedsPostSize,
  includeDelayed,
  isDeadLetterDue,
  isMarker,
  isQueueName,
  markerOf,
  messageDelay,
  messageTtl,
  NO_POLICY,
  parseMarker,
  postSettings,
  queuePolicy,
} from '../../shared/storage/queue-policy.js'

/** Values a positive-number setting must treat as "not set" (Zaqar tests them for truthiness). */
const UNSET: [string, unknown][] = [
  ['zero', 0],
  ['negative', -5],
  ['negative fraction', -0.5],
  ['string', '60'],
  ['boolean', true],
  ['null', null],
  ['object', { n: 60 }],
  ['array', [60]],
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
]

t.test('no reserved metadata → the shared empty policy', async (t) => {
  t.equal(queuePolicy('q', {}), NO_POLICY)
  t.equal(queuePolicy('q', { description: 'x', _other: 5 }), NO_POLICY, 'other keys do not matter')
  t.ok(Object.isFrozen(NO_POLICY))
  t.same(NO_POLICY, { defaultTtl: undefined, defaultDelay: undefined, maxPostBytes: undefined, deadLetter: undefined })
})

t.test('positive settings: default TTL, default delay, post size', async (t) => {
  const keys = [
    ['_default_message_ttl', 'defaultTtl'],
    ['_default_message_delay', 'defaultDelay'],
    ['_max_messages_post_size', 'maxPostBytes'],
  ] as const
  for (const [key, field] of keys) {
    t.equal(queuePolicy('q', { [key]: 120 })[field], 120, `${key}: a positive number is set`)
    t.equal(queuePolicy('q', { [key]: 0.5 })[field], 0.5, `${key}: a positive fraction is set`)
    t.equal(queuePolicy('q', {})[field], undefined, `${key}: missing`)
    for (const [what, v] of UNSET) t.equal(queuePolicy('q', { [key]: v })[field], undefined, `${key}: ${what} is not set`)
  }
  t.same(queuePolicy('q', { _default_message_ttl: 120, _default_message_delay: 30, _max_messages_post_size: 1000 }), {
    defaultTtl: 120,
    defaultDelay: 30,
    maxPostBytes: 1000,
    deadLetter: undefined,
  })
})

t.test('dead-letter rule: complete only with a numeric max claim count and a valid other queue', async (t) => {
  const dl = (meta: Metadata) => queuePolicy('q', meta).deadLetter
  t.same(dl({ _max_claim_count: 3, _dead_letter_queue: 'dlq' }), { queue: 'dlq', maxClaims: 3 }, 'no ttl: messages keep theirs')
  t.notOk('ttl' in dl({ _max_claim_count: 3, _dead_letter_queue: 'dlq' })!, 'ttl absent rather than undefined')
  t.same(dl({ _max_claim_count: 3, _dead_letter_queue: 'dlq', _dead_letter_queue_messages_ttl: 60 }), { queue: 'dlq', maxClaims: 3, ttl: 60 })
  // Zaqar tests the key's presence, not its truth: 0 and negatives dead-letter at the next claim.
  t.same(dl({ _max_claim_count: 0, _dead_letter_queue: 'dlq' }), { queue: 'dlq', maxClaims: 0 }, 'zero max claims is a rule')
  t.same(dl({ _max_claim_count: -1, _dead_letter_queue: 'dlq' }), { queue: 'dlq', maxClaims: -1 }, 'negative max claims is a rule')
  t.same(dl({ _max_claim_count: 2.5, _dead_letter_queue: 'dlq' }), { queue: 'dlq', maxClaims: 2.5 })
  for (const [what, v] of [['missing', undefined], ['string', '3'], ['null', null], ['boolean', true], ['NaN', Number.NaN]] as const) {
    const meta: Metadata = { _dead_letter_queue: 'dlq' }
    if (v !== undefined) meta._max_claim_count = v
    t.equal(dl(meta), undefined, `max claim count ${what}: no rule`)
  }
  for (const [what, v] of [['missing', undefined], ['empty', ''], ['invalid name', 'a b'], ['too long', 'x'.repeat(65)], ['number', 5], ['null', null]] as const) {
    const meta: Metadata = { _max_claim_count: 3 }
    if (v !== undefined) meta._dead_letter_queue = v
    t.equal(dl(meta), undefined, `dead-letter queue ${what}: no rule`)
  }
  t.equal(dl({ _max_claim_count: 3, _dead_letter_queue: 'q' }), undefined, 'the queue itself: no rule')
  t.same(queuePolicy('other', { _max_claim_count: 3, _dead_letter_queue: 'q' }).deadLetter, { queue: 'q', maxClaims: 3 }, 'another queue may use it')
  for (const [what, v] of UNSET) {
    t.same(dl({ _max_claim_count: 3, _dead_letter_queue: 'dlq', _dead_letter_queue_messages_ttl: v }), { queue: 'dlq', maxClaims: 3 }, `dlq ttl ${what}: kept`)
  }
  t.equal(dl({ _dead_letter_queue_messages_ttl: 60 }), undefined, 'a ttl alone is no rule')
})

t.test('dead-letter due at the max claim count', async (t) => {
  const rule = { queue: 'dlq', maxClaims: 2 }
  t.notOk(isDeadLetterDue(rule, 0))
  t.notOk(isDeadLetterDue(rule, 1))
  t.ok(isDeadLetterDue(rule, 2), 'claimed max times: due')
  t.ok(isDeadLetterDue(rule, 3))
  t.ok(isDeadLetterDue({ queue: 'dlq', maxClaims: 0 }, 0), 'zero: due before the first claim')
})

t.test('post settings: the queue policy when it applies, server defaults (v1.1) when not', async (t) => {
  const policy = queuePolicy('q', { _default_message_ttl: 120, _default_message_delay: 30 })
  t.same(postSettings(policy, true, 600), { defaultTtl: 120, honourDelay: true, defaultDelay: 30 })
  t.same(postSettings(policy, false, 600), { defaultTtl: 600, honourDelay: false, defaultDelay: 0 }, 'v1.1 ignores the queue')
  t.same(postSettings(NO_POLICY, true, 600), { defaultTtl: 600, honourDelay: false, defaultDelay: 0 })
  t.same(postSettings(queuePolicy('q', { _default_message_delay: 0 }), true, 600), { defaultTtl: 600, honourDelay: false, defaultDelay: 0 }, 'zero delay: delays ignored')

  const honoured = postSettings(policy, true, 600)
  t.equal(messageTtl({ body: '1' }, honoured), 120)
  t.equal(messageTtl({ body: '1', ttl: 300 }, honoured), 300, 'own ttl wins')
  t.equal(messageDelay({ body: '1' }, honoured), 30, 'default delay')
  t.equal(messageDelay({ body: '1', delay: 5 }, honoured), 5, 'own delay wins')
  t.equal(messageDelay({ body: '1', delay: 0 }, honoured), 0, 'own zero delay wins')
  const ignored = postSettings(NO_POLICY, true, 600)
  t.equal(messageDelay({ body: '1', delay: 60 }, ignored), 0, 'a delay on a queue without default delay is ignored')
  t.equal(messageTtl({ body: '1' }, ignored), 600)
})

t.test('post size limit', async (t) => {
  const policy = queuePolicy('q', { _max_messages_post_size: 100 })
  t.notOk(exceedsPostSize(policy, true, 99))
  t.notOk(exceedsPostSize(policy, true, 100), 'at the limit')
  t.ok(exceedsPostSize(policy, true, 101))
  t.notOk(exceedsPostSize(policy, false, 101), 'v1.1 ignores the queue limit')
  t.notOk(exceedsPostSize(NO_POLICY, true, 1e9), 'no limit')
  t.notOk(exceedsPostSize(queuePolicy('q', { _max_messages_post_size: 0 }), true, 1), 'zero: no limit')
  t.notOk(exceedsPostSize(queuePolicy('q', { _max_messages_post_size: -1 }), true, 1), 'negative: no limit')
})

t.test('include_delayed: forced on without a default delay, as asked with one', async (t) => {
  const delayed = queuePolicy('q', { _default_message_delay: 30 })
  t.equal(includeDelayed(NO_POLICY, undefined), true)
  t.equal(includeDelayed(NO_POLICY, false), true, 'forced on')
  t.equal(includeDelayed(NO_POLICY, true), true)
  t.equal(includeDelayed(delayed, undefined), false, 'off by default on a delayed queue')
  t.equal(includeDelayed(delayed, false), false)
  t.equal(includeDelayed(delayed, true), true)
  t.equal(includeDelayed(queuePolicy('q', { _default_message_delay: -3 }), false), true, 'a negative delay is no default delay')
})

t.test('single delete verdicts', async (t) => {
  const H = 'holder-claim'
  const O = 'other-claim'
  // [active, holder, claim id given, other active claim] → verdict
  const table: [boolean, string | null, string | undefined, boolean, string][] = [
    [false, null, undefined, false, 'delete'],
    [false, H, undefined, false, 'delete'],
    [true, H, undefined, false, 'claimed'],
    [false, null, O, false, 'not_held'],
    [false, H, H, false, 'not_held'],
    [true, H, H, false, 'delete'],
    [true, H, O, true, 'claimed'],
    [true, H, O, false, 'claim_gone'],
    [true, H, 'garbage', false, 'claim_gone'],
  ]
  for (const [active, holder, claimId, other, verdict] of table) {
    t.equal(deleteVerdict(active, holder, claimId, other), verdict, JSON.stringify({ active, holder, claimId, other }))
  }
  t.notOk(deleteNeedsClaimLookup(false, H, O), 'not claimed: no lookup')
  t.notOk(deleteNeedsClaimLookup(true, H, undefined), 'no claim id: no lookup')
  t.notOk(deleteNeedsClaimLookup(true, H, H), 'the holder: no lookup')
  t.ok(deleteNeedsClaimLookup(true, H, O), 'another claim id: look it up')
})

t.test('claims extend messages that would expire first', async (t) => {
  t.equal(claimExtendedTtl(60, 30), 90)
  t.ok(claimExtends(1000, 1001))
  t.notOk(claimExtends(1001, 1001), 'expiring with the claim: kept')
  t.notOk(claimExtends(2000, 1001))
})

t.test('markers: one format for both stores', async (t) => {
  for (const s of ['0', '1', '42', '1733300000000001', '9007199254740991']) {
    t.ok(isMarker(s), s)
    t.equal(parseMarker(s), Number(s))
    t.equal(markerOf(Number(s)), s, `${s} round-trips`)
  }
  for (const s of ['', '-1', '01', '1.5', '1e3', ' 1', '1 ', 'x', '+1', '10000000000000000', '0x10']) {
    t.notOk(isMarker(s), JSON.stringify(s))
    t.equal(parseMarker(s), undefined)
  }
})

t.test('queue names', async (t) => {
  for (const s of ['q', 'a-b_c.d', 'x'.repeat(64)]) t.ok(isQueueName(s), s)
  for (const s of ['', 'a b', 'x'.repeat(65), 'é', 'a/b', 5, null]) t.notOk(isQueueName(s), String(s))
})
