import { fork, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { RpcDriver, UNREACHABLE_DESCRIPTION } from '../../proxy/rpc-client.js'
import { exited, tempDir, waitFor, type Teardown } from '../helpers/index.js'

const fixture = fileURLToPath(new URL('./fixtures/fake-worker.ts', import.meta.url))

/** Forks the fake worker on `socket` and waits for its ready message; killed by pid in teardown. */
async function startWorker(t: Teardown, socket: string): Promise<ChildProcess> {
  const child = fork(fixture, [socket], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve())
    child.once('exit', (code) => reject(new Error(`fake worker exited with ${code}`)))
  })
  return child
}

/** How many calls the fake worker is serving (asked over IPC). */
function inFlight(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    const on = (m: { type?: string; n?: number }): void => {
      if (m?.type !== 'inFlight') return
      child.off('message', on)
      resolve(m.n ?? 0)
    }
    child.on('message', on)
    child.send('inFlight')
  })
}

const ref = { project: 'p', queue: 'q' }

t.test('a worker killed with SIGKILL mid-request: the call fails promptly, then service resumes', async (t) => {
  const dir = await tempDir(t)
  const socket = join(dir, 'worker-0.sock')
  const first = await startWorker(t, socket)
  const client = new RpcDriver(socket, { timeoutMs: 30_000, reconnectMinMs: 20, reconnectMaxMs: 200 })
  t.teardown(() => client.close())
  await client.ready(5000)
  await client.ping()

  const downs: number[] = []
  client.on('down', () => downs.push(Date.now()))
  const calls = [client.stats({ project: 'p', queue: 'sleep-20000' }), client.stats({ project: 'p', queue: 'sleep-20000' })]
  const settled = calls.map((p) => p.then(() => null, (e: unknown) => e))
  await waitFor(async () => (await inFlight(first)) === 2, { what: 'both calls to reach the worker' })
  t.equal(client.pendingCalls, 2, 'calls are in flight in the worker')

  const killedAt = Date.now()
  process.kill(first.pid!, 'SIGKILL')
  const errors = await Promise.all(settled)
  const took = Date.now() - killedAt
  for (const err of errors) t.match(err, { code: 'unavailable', description: UNREACHABLE_DESCRIPTION, retryAfter: 1 })
  t.ok(took < 1000, `pending calls failed ${took} ms after the kill (no hang until the 30 s timeout)`)
  await exited(first)
  t.equal(downs.length, 1, 'down emitted once')
  t.notOk(client.connected)

  for (let i = 0; i < 3; i++) {
    const started = Date.now()
    const err = await client.getQueue(ref).catch((e: unknown) => e)
    t.match(err, { code: 'unavailable' }, `new call ${i} fails while the worker is down`)
    t.ok(Date.now() - started < 1000, 'and fails fast (the call timeout is 30 s)')
    await new Promise((r) => setTimeout(r, 100))
  }

  // The restarted worker finds the dead one's socket file and replaces it.
  await startWorker(t, socket)
  const readyAt = Date.now()
  await client.ready(5000)
  t.ok(Date.now() - readyAt < 1000, 'the client reconnects within the back-off cap')
  await client.ping()
  t.equal(await client.createQueue(ref, { a: 1 }), true, 'calls succeed again')
  t.same(await client.getQueue(ref), { a: 1 })
})

t.test('a worker stopped with SIGTERM finishes the call in flight first', async (t) => {
  const dir = await tempDir(t)
  const socket = join(dir, 'worker-0.sock')
  const worker = await startWorker(t, socket)
  const client = new RpcDriver(socket, { timeoutMs: 30_000, reconnectMinMs: 20, reconnectMaxMs: 200 })
  t.teardown(() => client.close())
  await client.ready(5000)
  const slow = client.stats({ project: 'p', queue: 'sleep-400' })
  await waitFor(async () => (await inFlight(worker)) === 1, { intervalMs: 5, what: 'the call to reach the worker' })
  worker.kill('SIGTERM')
  t.same(await slow, { total: 0, claimed: 0, free: 0 }, 'answered despite the SIGTERM')
  t.match(await exited(worker), { code: 0 }, 'the worker exits 0')
})
