/**
 * WAL checkpoints off the event loop. SQLite's automatic checkpoint runs inside whichever commit
 * crosses the threshold, on the worker's only thread: measured here it was half the cost of a
 * post. Instead the driver turns automatic checkpoints off and this thread, with its own
 * connection, runs PASSIVE checkpoints (which never block the writer) on a timer. If the thread
 * dies, the driver turns automatic checkpoints back on, so the WAL can never grow unbounded.
 */
import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'

// CommonJS source for an eval'd worker: no build step or loader needed in dist/ or under tsx.
const THREAD = `
const { workerData, parentPort } = require('node:worker_threads')
const Database = require(workerData.module)
const db = new Database(workerData.path)
db.pragma('busy_timeout = 1000')
const tick = () => {
  try { db.pragma('wal_checkpoint(PASSIVE)') } catch (err) { parentPort.postMessage(String(err)) }
}
const timer = setInterval(tick, workerData.intervalMs)
parentPort.on('message', (m) => { if (m === 'stop') { clearInterval(timer); tick(); db.close(); process.exit(0) } })
`

export class Checkpointer {
  readonly #worker: Worker
  #stopped = false

  /** `onFailure` runs once if the thread cannot do its job (the driver re-enables autocheckpoint). */
  constructor(path: string, intervalMs: number, onFailure: (err: unknown) => void) {
    const module = createRequire(import.meta.url).resolve('better-sqlite3')
    this.#worker = new Worker(THREAD, { eval: true, workerData: { path, module, intervalMs } })
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
