/**
 * Writes answered by one group commit of the embedded store (the requests of one turn of the
 * event loop, worker/storage/sqlite/driver.ts) see each other's changes to queues: the commit
 * looks each queue up once (queues.ts, `cacheRows`), and a delete, purge or metadata change made
 * earlier in the same commit must not leave a later request working on the old row.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { SqliteDriver } from '../../worker/storage/sqlite/driver.js'
import { PostTooLarge } from '../../shared/storage/errors.js'
import { listOpts, postOpts } from '../contract/suite.js'

t.test('one turn: post, delete the queue, post again', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'missive-group-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const driver = new SqliteDriver({ path: join(dir, 'g.sqlite'), durability: 'fast', gcIntervalMs: 0 })
  t.teardown(() => driver.close())

  const q = { project: 'p', queue: 'deleted' }
  // Issued in one turn, without awaiting: they share one commit.
  const [, , [last]] = await Promise.all([
    driver.postMessages(q, [{ body: '"first"', ttl: 3600 }], postOpts()),
    driver.deleteQueue(q),
    driver.postMessages(q, [{ body: '"second"', ttl: 3600 }], postOpts()),
  ])
  const page = await driver.listMessages(q, listOpts())
  t.same(page.items.map((m) => m.id), [last], 'the queue made again holds the last post only')
  t.equal((await driver.stats(q)).total, 1)

  const p = { project: 'p', queue: 'purged' }
  await driver.postMessages(p, [{ body: '"old"', ttl: 3600 }], postOpts())
  const [, , [fresh]] = await Promise.all([
    driver.postMessages(p, [{ body: '"older"', ttl: 3600 }], postOpts()),
    driver.purge(p),
    driver.postMessages(p, [{ body: '"new"', ttl: 3600 }], postOpts()),
  ])
  t.same((await driver.listMessages(p, listOpts())).items.map((m) => m.id), [fresh], 'the purged queue holds the post after the purge only')

  const m = { project: 'p', queue: 'limited' }
  await driver.createQueue(m, {})
  // The first post reads the queue's row; the metadata changes after it.
  const [, , refused] = await Promise.allSettled([
    driver.postMessages(m, [{ body: '"small"', ttl: 3600 }], postOpts({ postBytes: 5 })),
    driver.setQueueMetadata(m, { _max_messages_post_size: 10 }),
    driver.postMessages(m, [{ body: '"too big"', ttl: 3600 }], postOpts({ postBytes: 100 })),
  ])
  t.equal(refused.status, 'rejected', 'the metadata set earlier in the commit limits the post')
  t.ok(refused.status === 'rejected' && refused.reason instanceof PostTooLarge)
  t.equal((await driver.stats(m)).total, 1)
})
