/**
 * The migration tests' invariant checker (tests/migration/checker.ts) on histories written by
 * hand: a clean one passes, and each kind of violation — lost, duplicate, resurrected, phantom,
 * out of order — is reported, so a migration test that passes has really been checked.
 */
import t from 'tap'
import { History, describe, type Delivery, type Stamp } from './checker.js'

let clock = 0
const claim = (h: History, consumer: number, claimId: string, msgs: [string, Stamp][], ttl = 300): void => {
  const start = ++clock
  const end = ++clock
  for (const [id, body] of msgs) h.deliver({ id, body, claimId, consumer, start, end, ttl } satisfies Delivery)
}

/** Two producers, three messages each; consumer 0 claims and deletes four; two remain. */
function clean(): History {
  const h = new History()
  const ids: [string, Stamp][] = []
  for (let s = 0; s < 3; s++)
    for (let p = 0; p < 2; p++) {
      const id = `m${p}${s}`
      h.post({ p, s }, id)
      ids.push([id, { p, s }])
    }
  claim(h, 0, 'c1', ids.slice(0, 2))
  claim(h, 0, 'c2', ids.slice(2, 4))
  for (const [id] of ids.slice(0, 4)) h.deleteAcked(id, ++clock)
  h.finish(ids.slice(4).map(([id, body]) => ({ id, body })))
  return h
}

t.test('a clean history passes', async (t) => {
  const v = clean().check()
  t.same(describe(v.violations), [])
  t.match(v, { posted: 6, delivered: 4, deleted: 4, remaining: 2 })
})

t.test('a message acknowledged but neither delivered nor left is lost', async (t) => {
  const h = clean()
  h.post({ p: 0, s: 3 }, 'gone')
  t.same(h.check().violations.lost, ['gone'])
})

t.test('a message delivered twice by live claims is a duplicate; after the first claim expired it is not', async (t) => {
  const h = clean()
  claim(h, 1, 'c3', [['m01', { p: 0, s: 1 }]])
  t.same(h.check().violations.duplicates, ['m01 delivered by claims c2 and c3'])
  const h2 = clean()
  h2.finish([{ id: 'm12', body: { p: 1, s: 2 } }])
  claim(h2, 1, 'c3', [['m02', { p: 0, s: 2 }]], 0)
  clock += 10
  claim(h2, 1, 'c4', [['m02', { p: 0, s: 2 }]], 0)
  t.same(h2.check().violations.duplicates, [], 'a claim with TTL 0 expired before the next one')
})

t.test('a deleted message seen again is resurrected', async (t) => {
  const h = clean()
  claim(h, 1, 'c3', [['m00', { p: 0, s: 0 }]])
  t.ok(h.check().violations.resurrected.some((l) => l.includes('delivered by claim c3')))
  const h2 = clean()
  h2.finish([...h2.final!, { id: 'm10', body: { p: 1, s: 0 } }])
  t.ok(h2.check().violations.resurrected.some((l) => l.includes('in the queue at the end')))
})

t.test('a message nobody posted is a phantom, unless a post of that stamp went unanswered', async (t) => {
  const h = clean()
  claim(h, 1, 'c3', [['x', { p: 5, s: 0 }]])
  t.equal(h.check().violations.phantoms.length, 1)
  h.postUncertain({ p: 5, s: 0 })
  t.same(h.check().violations.phantoms, [])
  const h2 = clean()
  claim(h2, 1, 'c3', [['m12', { p: 0, s: 9 }]])
  t.equal(h2.check().violations.phantoms.length, 1, 'a known id with another body is a phantom too')
})

t.test('a producer’s messages out of order, to one consumer or in the final listing, break FIFO', async (t) => {
  const h = new History()
  for (let s = 0; s < 3; s++) h.post({ p: 0, s }, `m${s}`)
  claim(h, 0, 'c1', [['m1', { p: 0, s: 1 }]])
  claim(h, 0, 'c2', [['m0', { p: 0, s: 0 }]])
  claim(h, 1, 'c3', [['m2', { p: 0, s: 2 }]])
  h.finish([])
  t.same(h.check().violations.fifo, ['consumer 0: producer 0 message 0 after 1'])
  const h2 = new History()
  for (let s = 0; s < 2; s++) h2.post({ p: 0, s }, `m${s}`)
  h2.finish([
    { id: 'm1', body: { p: 0, s: 1 } },
    { id: 'm0', body: { p: 0, s: 0 } },
  ])
  t.same(h2.check().violations.fifo, ['the final listing: producer 0 message 0 after 1'])
})
