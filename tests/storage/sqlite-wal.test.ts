/**
 * The embedded store's WAL stays bounded under a steady stream of commits: the background
 * checkpoints copy it into the database, and the writer makes it start over once it holds
 * `walRestartFrames` frames (worker/storage/sqlite/checkpointer.ts, RESTART_FRAMES). Before,
 * a WAL written without pause was copied but never rewound, and grew by every commit's pages.
 */
import { mkdtempSync, openSync, readSync, closeSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { SqliteDriver } from '../../worker/storage/sqlite/driver.js'
import { postOpts } from '../contract/suite.js'

/** The WAL header's checkpoint sequence number: it goes up each time the WAL starts over. */
function walSequence(wal: string): number {
  const fd = openSync(wal, 'r')
  try {
    const head = Buffer.alloc(16)
    return readSync(fd, head, 0, 16, 0) === 16 ? head.readUInt32BE(12) : -1
  } finally {
    closeSync(fd)
  }
}

t.test('a WAL written without pause starts over and stays bounded', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'missive-wal-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'w.sqlite')
  const restartFrames = 64
  const driver = new SqliteDriver({ path, durability: 'fast', gcIntervalMs: 0, checkpointIntervalMs: 5, walRestartFrames: restartFrames })
  t.teardown(() => driver.close())
  const body = JSON.stringify({ pad: 'x'.repeat(200) })
  const batch = Array.from({ length: 10 }, () => ({ body, ttl: 3600 }))
  // Each turn's 16 posts share one commit of ~45 pages: 600 turns write ~27,000 frames, 100 MB
  // of WAL if it never starts over. The bound leaves the checkpoint thread ample slack (a
  // starved thread rewinds late, not never) while staying well below that.
  const bound = 12_288 * 4120
  const first = walSequence(`${path}-wal`)
  let turns = 0
  let restarts = 0
  let seq = first
  let largest = 0
  const deadline = Date.now() + 30_000
  while ((turns < 600 || restarts < 3) && largest <= bound && Date.now() < deadline) {
    await Promise.all(Array.from({ length: 16 }, (_, i) => driver.postMessages({ project: 'p', queue: `q${i % 4}` }, batch, postOpts())))
    turns++
    largest = Math.max(largest, statSync(`${path}-wal`).size)
    const now = walSequence(`${path}-wal`)
    if (now !== seq) restarts++
    seq = now
  }
  t.ok(largest <= bound, `the WAL stayed under ${bound} bytes (largest ${largest}, after ${turns} turns)`)
  t.ok(restarts >= 3, `the WAL started over (${restarts} times in ${turns} turns)`)
  const stats = await driver.stats({ project: 'p', queue: 'q0' })
  t.equal(stats.total, turns * 4 * 10, 'every message is there')
})
