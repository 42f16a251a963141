/**
 * Micro-benchmark of the `DataDriver` wrappers that sit on every request, generated from the
 * operation table (shared/storage/operations.ts), against the hand-written forms they replaced
 * (issue 12), copied here as they were: the metrics wrapper (worker/storage/metered.ts), the RPC
 * client's methods (proxy/rpc-client.ts), the worker's RPC dispatch (worker/rpc-server.ts) and
 * the forwarder of the pool served inside the proxy (proxy/embedded.ts); and the cost of the circuit
 * breaker (proxy/circuit-breaker.ts) over a bare driver.
 *
 *   npm run build --silent && node dist/perf/driver-wrappers.js [calls=1000000] [rounds=5] [only]
 *
 * Each case awaits one call at a time over a driver that does nothing (every method returns a
 * settled promise made once), so what is timed is the wrapper. Before and after run in alternate
 * rounds in one process, so that a busy machine slows both alike. Printed: the median CPU ns per
 * call of each, their ratio, and young-generation collections per million calls (a stable proxy for
 * the bytes allocated per call). Not a test: time belongs here, not in tests/.
 */
import { PerformanceObserver, constants } from 'node:perf_hooks'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Counter, Histogram, Registry } from 'prom-client'
import { RpcDriver } from '../proxy/rpc-client.js'
import { CircuitBreaker } from '../proxy/circuit-breaker.js'
import { MissiveError, unavailable } from '../shared/errors.js'
import { createLogger } from '../shared/log.js'
import { encodeMessage } from '../shared/rpc/frames.js'
import type { DataDriver, Message, NewMessage, PostOptions, QueueRef } from '../shared/storage/contract.js'
import {
  DRIVER_OPERATIONS,
  arityOf,
  defineOperations,
  type DriverOperation,
  type OperationMethod,
  type OpArgs,
  type OpResult,
} from '../shared/storage/operations.js'
import { serveRpc } from '../worker/rpc-server.js'
import { metered, type DriverMetrics } from '../worker/storage/metered.js'

const CALLS = Number(process.argv[2] ?? 1_000_000)
const ROUNDS = Number(process.argv[3] ?? 5)
/** Only the cases whose name contains this. */
const ONLY = process.argv[4] ?? ''

let scavenges = 0
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) scavenges++
  }
}).observe({ entryTypes: ['gc'] })

/** GC entries reach the observer on a later turn of the loop, not within a setImmediate. */
const gcEntries = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 50))

type Once = () => Promise<unknown>

async function run(calls: number, once: Once): Promise<{ ns: number; gc: number }> {
  await gcEntries()
  const g0 = scavenges
  // CPU time, not wall time: on a shared machine, time spent waiting for a core is not the wrapper's.
  const c0 = process.cpuUsage()
  for (let i = 0; i < calls; i++) await once()
  const c = process.cpuUsage(c0)
  const ns = ((c.user + c.system) * 1000) / calls
  await gcEntries()
  return { ns, gc: ((scavenges - g0) * 1e6) / calls }
}

const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!

async function compare(name: string, calls: number, before: Once, after: Once): Promise<void> {
  if (!name.includes(ONLY)) return
  for (let i = 0; i < 100_000; i++) {
    await before()
    await after()
  }
  const b: { ns: number; gc: number }[] = []
  const a: { ns: number; gc: number }[] = []
  for (let r = 0; r < ROUNDS; r++) {
    // Which goes first alternates too: a collection or a neighbour's burst favours neither.
    if (r & 1) a.push(await run(calls, after))
    b.push(await run(calls, before))
    if (!(r & 1)) a.push(await run(calls, after))
  }
  const bn = med(b.map((x) => x.ns))
  const an = med(a.map((x) => x.ns))
  const f = (n: number): string => n.toFixed(1).padStart(7)
  process.stdout.write(
    `${name.padEnd(38)} before ${f(bn)} ns  after ${f(an)} ns  (${(an / bn).toFixed(2)}x)` +
      `   scavenges/1M ${med(b.map((x) => x.gc)).toFixed(0)} → ${med(a.map((x) => x.gc)).toFixed(0)}\n`,
  )
}

/** A driver whose every operation answers at once with the same settled promise. */
function noopDriver(): DataDriver {
  const done = Promise.resolve(undefined)
  const ids = Promise.resolve(['m1'])
  const d: Record<string, unknown> = { kind: 'noop', close: () => done }
  for (const op of DRIVER_OPERATIONS) d[op] = () => done
  const none = Promise.resolve(null)
  d.postMessages = () => ids
  d.createClaim = () => none
  return d as unknown as DataDriver
}

function prom(): DriverMetrics {
  const registers = [new Registry()]
  return {
    duration: new Histogram({ name: 'd', help: 'd', labelNames: ['operation', 'outcome', 'pool', 'worker'], registers }),
    posted: new Counter({ name: 'p', help: 'p', labelNames: ['pool'], registers }),
    claimed: new Counter({ name: 'c', help: 'c', labelNames: ['pool'], registers }),
    deleted: new Counter({ name: 'x', help: 'x', labelNames: ['pool'], registers }),
  }
}

// --- the hand-written forms, as they were before the operation table --------------------------

function legacyMetered<T extends DataDriver>(driver: T, metrics: DriverMetrics, labels: { pool: string; worker?: string }): T {
  const wrapped = Object.create(driver) as T
  const base = { pool: labels.pool, worker: labels.worker ?? '' }
  const { posted, claimed, deleted } = metrics
  const counted: Partial<Record<DriverOperation, (result: unknown, args: unknown[]) => void>> = {
    postMessages: (r) => posted?.inc({ pool: labels.pool }, (r as unknown[]).length),
    createClaim: (r) => {
      if (r !== null) claimed?.inc({ pool: labels.pool }, (r as { messages: unknown[] }).messages.length)
    },
    popMessages: (r) => deleted?.inc({ pool: labels.pool }, (r as unknown[]).length),
    deleteMessage: () => deleted?.inc({ pool: labels.pool }, 1),
    deleteMessages: (_r, args) => deleted?.inc({ pool: labels.pool }, (args[1] as unknown[]).length),
  }
  for (const op of DRIVER_OPERATIONS) {
    const fn = (driver[op] as (...a: unknown[]) => Promise<unknown>).bind(driver)
    const count = counted[op]
    const ok = metrics.duration.labels({ ...base, operation: op, outcome: 'ok' })
    const err = metrics.duration.labels({ ...base, operation: op, outcome: 'error' })
    Object.defineProperty(wrapped, op, {
      value: (...args: unknown[]) => {
        const t0 = performance.now()
        return fn(...args).then(
          (result) => {
            ok.observe((performance.now() - t0) / 1000)
            count?.(result, args)
            return result
          },
          (e: unknown) => {
            err.observe((performance.now() - t0) / 1000)
            throw e
          },
        )
      },
    })
  }
  return wrapped
}

/** The RPC client's methods as they were written out (the benchmarked ones). */
class LegacyRpcDriver extends RpcDriver {
  override getMessage(ref: QueueRef, id: string): Promise<Message | null> {
    return this.call('getMessage', [ref, id]) as Promise<Message | null>
  }

  override postMessages(ref: QueueRef, messages: NewMessage[], opts: PostOptions): Promise<string[]> {
    return this.call('postMessages', [ref, messages, opts]) as Promise<string[]>
  }

  override async deleteMessage(ref: QueueRef, id: string, claimId?: string): Promise<void> {
    await this.call('deleteMessage', [ref, id, claimId])
  }
}

function legacyEmbedded(open: () => DataDriver | undefined): DataDriver {
  const driver = {} as Record<string, unknown>
  for (const op of DRIVER_OPERATIONS) {
    driver[op] = (...args: unknown[]): Promise<unknown> => {
      const d = open()
      if (d !== undefined) return (d[op] as (...a: unknown[]) => Promise<unknown>)(...args)
      return Promise.reject(unavailable('not open'))
    }
  }
  return driver as unknown as DataDriver
}

/** The embedded pool's forwarder as proxy/embedded.ts now builds it. */
function embeddedForwarder(open: () => DataDriver | undefined): DataDriver {
  return defineOperations(
    { kind: 'embedded', close: async () => {} },
    <K extends DriverOperation>(op: K) =>
      (...args: OpArgs<K>): Promise<OpResult<K>> => {
        const d = open()
        if (d !== undefined) return (d[op] as OperationMethod<K>)(...args)
        return Promise.reject(unavailable('not open'))
      },
  )
}

// --- cases ----------------------------------------------------------------------------------

const ref = { project: 'p', queue: 'q' }
const postOpts = { clientId: 'c', defaultTtl: 60, postBytes: 10, queuePolicy: true }
const messages = [{ body: '1' }]
const claimOpts = { ttl: 30, grace: 30, limit: 5 }

/** A mix of operations, as traffic is: the wrappers' call sites see more than one shape. */
function mixed(d: DataDriver): Once {
  let i = 0
  return () => {
    switch (i++ & 3) {
      case 0:
        return d.postMessages(ref, messages, postOpts)
      case 1:
        return d.getMessage(ref, 'm1')
      case 2:
        return d.createClaim(ref, claimOpts)
      default:
        return d.deleteMessage(ref, 'm1', 'c1')
    }
  }
}

const noop = noopDriver()
const floor = (): Promise<unknown> => noop.getMessage(ref, 'm1')
await compare('floor: noop.getMessage (no wrapper)', CALLS, floor, floor)

const mOld = legacyMetered(noopDriver(), prom(), { pool: 'p', worker: '0' })
const mNew = metered(noopDriver(), prom(), { pool: 'p', worker: '0' })
await compare('metered.getMessage', CALLS, () => mOld.getMessage(ref, 'm1'), () => mNew.getMessage(ref, 'm1'))
await compare(
  'metered.postMessages (counted)',
  CALLS,
  () => mOld.postMessages(ref, messages, postOpts),
  () => mNew.postMessages(ref, messages, postOpts),
)
await compare('metered mixed ops', CALLS, mixed(mOld), mixed(mNew))
// The same with a histogram that does nothing: prom-client's observe is most of the cost above,
// and hides the wrapper's own.
const quiet = { observe: () => {} }
const stubbed = { duration: { labels: () => quiet } } as unknown as DriverMetrics
const sOld = legacyMetered(noopDriver(), stubbed, { pool: 'p' })
const sNew = metered(noopDriver(), stubbed, { pool: 'p' })
await compare('metered, no-op histogram, mixed ops', CALLS, mixed(sOld), mixed(sNew))

// The circuit breaker in front of each pool worker (proxy/circuit-breaker.ts), closed: what it adds
// to every call (before: the bare driver).
const guarded = new CircuitBreaker(noopDriver(), { checkMs: 0 })
await compare('circuit breaker (closed), mixed ops', CALLS, mixed(noopDriver()), mixed(guarded.driver))
guarded.close()

const dir = mkdtempSync(join(tmpdir(), 'missive-wrappers-'))
const log = createLogger('bench', 'silent')
const settled = Promise.resolve(undefined)
const offline = { timeoutMs: 1000, reconnectMinMs: 60_000, reconnectMaxMs: 60_000 }
const rOld = new LegacyRpcDriver(join(dir, 'none.sock'), offline)
const rNew = new RpcDriver(join(dir, 'none.sock'), offline)
type Call = (op: string, args: unknown[]) => Promise<unknown>
const stub = (call: Call): void => {
  for (const d of [rOld, rNew]) (d as unknown as { call: Call }).call = call
}
stub(() => settled)
await compare('rpc client.getMessage (call stubbed)', CALLS, () => rOld.getMessage(ref, 'm1'), () => rNew.getMessage(ref, 'm1'))
await compare('rpc client.deleteMessage (stubbed)', CALLS, () => rOld.deleteMessage(ref, 'm1'), () => rNew.deleteMessage(ref, 'm1'))
stub((op, args) => {
  encodeMessage({ id: 1, op, args })
  return settled
})
await compare('rpc client.getMessage + encode', CALLS / 5, () => rOld.getMessage(ref, 'm1'), () => rNew.getMessage(ref, 'm1'))
await compare(
  'rpc client.postMessages + encode',
  CALLS / 5,
  () => rOld.postMessages(ref, messages, postOpts),
  () => rNew.postMessages(ref, messages, postOpts),
)
await rOld.close()
await rNew.close()

// The worker's dispatch of one decoded request, after the frame decoder.
const served = noopDriver()
const methods = served as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
const LEGACY_OPS: ReadonlySet<string> = new Set(DRIVER_OPERATIONS)
const requests: { op: string; args: unknown[] }[] = [
  { op: 'getMessage', args: [ref, 'm1'] },
  { op: 'postMessages', args: [ref, messages, postOpts] },
  { op: 'deleteMessage', args: [ref, 'm1', null] },
  { op: 'createClaim', args: [ref, claimOpts] },
]
let di = 0
await compare(
  'rpc server dispatch (mixed ops)',
  CALLS,
  () => {
    const { op, args } = requests[di++ & 3]!
    if (!LEGACY_OPS.has(op)) throw new MissiveError('bad_request')
    for (let i = 0; i < args.length; i++) if (args[i] === null) args[i] = undefined
    return methods[op]!.apply(served, args)
  },
  () => {
    const { op, args } = requests[di++ & 3]!
    const arity = arityOf(op)
    if (arity === undefined || args.length > arity) throw new MissiveError('bad_request')
    for (let i = 0; i < args.length; i++) if (args[i] === null) args[i] = undefined
    return (served[op as DriverOperation] as OperationMethod<DriverOperation, DataDriver>).apply(served, args as OpArgs<DriverOperation>)
  },
)

const inner = noopDriver()
const eOld = legacyEmbedded(() => inner)
const eNew = embeddedForwarder(() => inner)
await compare('embedded forwarder mixed ops', CALLS, mixed(eOld), mixed(eNew))

// The whole RPC path over a real socket, 64 calls in flight: the wrappers are a sliver of it.
const sock = join(dir, 'w.sock')
const server = await serveRpc(noopDriver(), sock, log)
const cOld = new LegacyRpcDriver(sock, { timeoutMs: 10_000 })
const cNew = new RpcDriver(sock, { timeoutMs: 10_000 })
await Promise.all([cOld.ready(5000), cNew.ready(5000)])
const batch = new Array<Promise<unknown>>(64)
const roundTrip =
  (c: RpcDriver): Once =>
  async () => {
    for (let i = 0; i < 64; i++) batch[i] = c.getMessage(ref, 'm1')
    await Promise.all(batch)
  }
await compare('rpc round trip, per batch of 64', CALLS / 1000, roundTrip(cOld), roundTrip(cNew))
await cOld.close()
await cNew.close()
await server.close(1000)
rmSync(dir, { recursive: true, force: true })
