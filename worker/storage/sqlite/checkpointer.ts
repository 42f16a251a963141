/**
 * WAL checkpoints off the event loop. SQLite's automatic checkpoint runs inside whichever commit
 * crosses the threshold, on the worker's only thread: measured here it was half the cost of a
 * post. Instead the driver turns automatic checkpoints off and this thread, with its own
 * connection, runs PASSIVE checkpoints (which never block the writer) on a timer. If the thread
 * dies, the driver turns automatic checkpoints back on, so the WAL can never grow unbounded.
 */
import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'

/**
 * WAL frames (~4 KiB each) past which the writer is asked to restart the WAL (`restartDue`).
 * A passive checkpoint from another connection copies the WAL into the database but never lets
 * it start over: SQLite rewinds the WAL only when a writer begins with every frame copied, and
 * under a steady stream of commits new frames always land while the thread copies. Measured
 * before this: the WAL grew without bound under load (520 MB in 5 s of posts beside a 46 MB
 * database), every commit appending to new file blocks the kernel had to allocate and zero.
 */
export const RESTART_FRAMES = 4096

/** Bytes the WAL file is cut back to when it starts over (`journal_size_limit`): four restart lengths of 4 KiB pages. */
export function walSizeLimit(restartFrames: number): number {
  return 4 * restartFrames * 4096
}

// CommonJS source for an eval'd worker: no build step or loader needed in dist/ or under tsx.
const THREAD = `
const { workerData, parentPort } = require('node:worker_threads')
const Database = require(workerData.module)
const db = new Database(workerData.path)
db.pragma('busy_timeout = 1000')
const due = new Int32Array(workerData.due)
const tick = (last) => {
  // While a restart is pending the writer's own pass is due: a pass of ours at the same moment
  // would make it fail (only one checkpoint runs at a time), and on a loaded machine where our
  // passes run long that was every time, so the WAL grew on without starting over.
  if (!last && Atomics.load(due, 0) === 1) return
  try {
    let [r] = db.pragma('wal_checkpoint(PASSIVE)')
    if (r.log < workerData.restartFrames) return
    // Passes in quick succession, each copying what landed during the one before, so that the
    // writer's own pass (restartDue) is left with the frames of a millisecond or so.
    for (let i = 0; i < 4; i++) {
      const before = r.log
      ;[r] = db.pragma('wal_checkpoint(PASSIVE)')
      if (r.log - before < 64) break
    }
    Atomics.store(due, 0, 1)
  } catch (err) { parentPort.postMessage(String(err)) }
}
const timer = setInterval(tick, workerData.intervalMs, false)
parentPort.on('message', (m) => { if (m === 'stop') { clearInterval(timer); tick(true); db.close(); process.exit(0) } })
`

export class Checkpointer {
  readonly #worker: Worker
  #stopped = false
  /** Set by the thread when the WAL holds RESTART_FRAMES or more (`restartDue`). */
  readonly #due = new Int32Array(new SharedArrayBuffer(4))

  /** `onFailure` runs once if the thread cannot do its job (the driver re-enables autocheckpoint). */
  constructor(path: string, intervalMs: number, onFailure: (err: unknown) => void, restartFrames: number = RESTART_FRAMES) {
    const module = createRequire(import.meta.url).resolve('better-sqlite3')
    this.#worker = new Worker(THREAD, { eval: true, workerData: { path, module, intervalMs, restartFrames, due: this.#due.buffer } })
    this.#worker.unref()
    let failed = false
    const fail = (err: unknown): void => {
      if (failed || this.#stopped) return
      failed = true
      onFailure(err)
    }
    this.#worker.on('error', fail)
    this.#worker.on('exit', (code) => fail(new Error(`checkpoint thread exited with code ${code}`)))
    this.#worker.on('message', (m: unknown) => fail(new Error(`checkpoint failed: ${String(m)}`)))
  }

  /**
   * Whether the WAL has grown past RESTART_FRAMES and no pass of the writer's has copied it all
   * since (`restartDone`). The writer then runs one passive checkpoint itself, between two of its
   * transactions: the thread has copied nearly everything already, so it copies only the frames
   * since, and the writer's next transaction finds the WAL fully copied and starts it over from
   * its beginning.
   */
  restartDue(): boolean {
    return Atomics.load(this.#due, 0) === 1
  }

  /**
   * The writer's pass is over. If it copied every frame, the thread takes up its passes again;
   * if not (another checkpoint ran, or a reader held frames), the restart stays due and the
   * writer tries again after its next transaction, which adds only that transaction's frames.
   */
  restartDone(copiedAll: boolean): void {
    if (copiedAll) Atomics.store(this.#due, 0, 0)
  }

  /** A last checkpoint, then the thread ends. */
  async stop(): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    const exited = new Promise<void>((resolve) => this.#worker.once('exit', () => resolve()))
    this.#worker.ref() // keep the process alive for the last checkpoint
    this.#worker.postMessage('stop')
    await Promise.race([exited, new Promise((r) => setTimeout(r, 2000).unref())])
    await this.#worker.terminate()
  }
}
