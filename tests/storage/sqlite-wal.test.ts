/**
 * The embedded store's WAL stays bounded under a steady stream of commits: the background
 * checkpoints copy it into the database, and the writer makes it start over once it holds
 * `walRestartFrames` frames (worker/storage/sqlite/checkpointer.ts, RESTART_FRAMES). Before,
 * a WAL written without pause was copied but never rewound, and grew by every commit's pages.
 * The file itself is cut back when it starts over (`journal_size_limit`, checkpointer.ts
 * `walSizeLimit`), so a burst does not keep its disk.
 */
import { mkdtempSync, openSync, readSync, closeSync, rmSync, statSync } from 'node:fs'
import { endianness, tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { SqliteDriver } from '../../worker/storage/sqlite/driver.js'
import { walSizeLimit } from '../../worker/storage/sqlite/checkpointer.js'
import { postOpts } from '../contract/suite.js'

/** The first `n` bytes of a file. */
function head(file: string, n: number): Buffer {
  const fd = openSync(file, 'r')
  try {
    const buf = Buffer.alloc(n)
    return readSync(fd, buf, 0, n, 0) === n ? buf : Buffer.alloc(0)
  } finally {
    closeSync(fd)
  }
}

/** The WAL header's checkpoint sequence number: it goes up each time the WAL starts over. */
function walSequence(wal: string): number {
  const h = head(wal, 16)
  return h.length === 16 ? h.readUInt32BE(12) : -1
}

/** Frames in use in the WAL (the wal-index header's mxFrame, in the `-shm` file, native byte order). */
function walFrames(shm: string): number {
  const h = head(shm, 20)
  if (h.length !== 20) return -1
  return endianness() === 'LE' ? h.readUInt32LE(16) : h.readUInt32BE(16)
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
  const turn = (): Promise<unknown> =>
    Promise.all(Array.from({ length: 16 }, (_, i) => driver.postMessages({ project: 'p', queue: `q${i % 4}` }, batch, postOpts())))
  // Each turn's 16 posts share one commit of ~45 pages: 600 turns write ~27,000 frames, 100 MB
  // of WAL if it never starts over. The bound on the frames in use leaves the checkpoint thread
  // ample slack (a starved thread rewinds late, not never) while staying well below that. It
  // counts from the first restart: until the thread is up (slow on a loaded machine), the WAL
  // grows as it would without it.
  const bound = 12_288
  let turns = 0
  let restarts = 0
  let seq = walSequence(`${path}-wal`)
  let largest = 0
  let largestFile = 0
  const deadline = Date.now() + 30_000
  while ((turns < 600 || restarts < 3) && largest <= bound && Date.now() < deadline) {
    await turn()
    turns++
    largestFile = Math.max(largestFile, statSync(`${path}-wal`).size)
    const now = walSequence(`${path}-wal`)
    if (now !== seq) restarts++
    seq = now
    if (restarts > 0) largest = Math.max(largest, walFrames(`${path}-shm`))
  }
  t.ok(largest > 0 && largest <= bound, `the WAL stayed under ${bound} frames (largest ${largest}, after ${turns} turns)`)
  t.ok(restarts >= 3, `the WAL started over (${restarts} times in ${turns} turns)`)
  const stats = await driver.stats({ project: 'p', queue: 'q0' })
  t.equal(stats.total, turns * 4 * 10, 'every message is there')

  // The file grew past the limit in the burst (~45 frames a turn against a limit of 256); a
  // restart cuts it back to the limit, where it stays while the WAL is short.
  const limit = walSizeLimit(restartFrames)
  t.ok(largestFile > limit, `the burst grew the file past ${limit} bytes (${largestFile})`)
  let size = statSync(`${path}-wal`).size
  const calm = Date.now() + 30_000
  while (size > limit && Date.now() < calm) {
    await driver.postMessages({ project: 'p', queue: 'q0' }, [{ body: '1', ttl: 3600 }], postOpts())
    await new Promise((resolve) => setImmediate(resolve))
    size = statSync(`${path}-wal`).size
  }
  t.ok(size <= limit, `the WAL file was cut back to ${limit} bytes (${size})`)
})
