/**
 * The operation table (shared/storage/operations.ts) and the wrappers generated from it: the
 * table covers exactly the contract's operations, every wrapper exposes every operation and
 * passes arguments, results and errors through unchanged — in process (the very same objects)
 * and across the RPC wire (equal values, same error code and text).
 */
import { join } from 'node:path'
import { Counter, Histogram, Registry } from 'prom-client'
import t from 'tap'
import { EmbeddedPool } from '../../proxy/embedded.js'
import { RpcDriver } from '../../proxy/rpc-client.js'
import { MissiveError } from '../../shared/errors.js'
import { createLogger } from '../../shared/log.js'
import type { DataDriver, Message, QueueRef } from '../../shared/storage/contract.js'
import {
  DRIVER_OPERATIONS,
  OPERATIONS,
  queueOf,
  wrapDriver,
  type DriverOperation,
  type OpArgs,
  type OpResult,
} from '../../shared/storage/operations.js'
import { serveRpc } from '../../worker/rpc-server.js'
import { metered } from '../../worker/storage/metered.js'
import { RedisDriver } from '../../worker/storage/redis/driver.js'
import { SqliteDriver } from '../../worker/storage/sqlite/driver.js'
import { tempDir, type Teardown } from '../helpers/index.js'
import { spyDriver, type SpyDriver } from '../helpers/spy-driver.js'

// --- compile-time: `npm run build` fails if the table and the contract drift apart -------------

type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false
/** The operations are every member of `DataDriver` but `kind`, `close` and the `deadLettered` count. */
const opsAreTheContract: Equal<DriverOperation | 'kind' | 'close' | 'deadLettered', keyof DataDriver> = true
/** The table has one entry per operation, no more. */
const tableIsTheOps: Equal<keyof typeof OPERATIONS, DriverOperation> = true

// One sample call and one answer per operation; a new operation without them does not compile.
const ref: QueueRef = { project: 'p1', queue: 'q1' }
const ARGS: { [K in DriverOperation]: OpArgs<K> } = {
  ping: [],
  createQueue: [ref, { a: 1, nested: { b: [1, 'x', null] } }],
  getQueue: [ref],
  setQueueMetadata: [ref, { c: true }],
  deleteQueue: [ref],
  listQueues: ['p1', { limit: 10, marker: 'a', detailed: true, name: 'q', filters: { k: 'v' }, withCount: true }],
  stats: [ref],
  storedBytes: [ref],
  purge: [ref],
  postMessages: [
    ref,
    [{ body: '{"x":1}', ttl: 60, delay: 2 }, { body: '"y"' }],
    { clientId: 'c', defaultTtl: 3600, postBytes: 20, queuePolicy: true, idempotencyKey: 'k', idempotencyWindow: 30 },
  ],
  listMessages: [ref, { limit: 5, clientId: 'c', echo: false, includeClaimed: true, includeDelayed: false, marker: '7' }],
  getMessage: [ref, 'm1'],
  getMessages: [ref, ['m1', 'm2']],
  deleteMessage: [ref, 'm1', 'c1'],
  deleteMessages: [ref, ['m1'], ['c1', 'c2']],
  popMessages: [ref, 3],
  createClaim: [ref, { ttl: 30, grace: 10, limit: 2, deadLetter: 'dlq' }],
  getClaim: [ref, 'c1'],
  renewClaim: [ref, 'c1', { ttl: 40, grace: 5 }],
  releaseClaim: [ref, 'c1'],
  listen: [ref, 25_000],
  // (A null argument crosses RPC as absent: the contract suite checks fenceQueue(ref, null, …).)
  fenceQueue: [ref, { token: 't1', to: 'pool-b', state: 'journal' }, 't0'],
  getFence: [ref],
  readForMigration: [ref, 7, 100],
  readJournal: [ref, 50],
  ackJournal: [ref, [{ id: 'm1', version: 3 }], true],
  importMessages: [
    ref,
    't1',
    {
      reset: true,
      metadata: { a: 1 },
      upsert: [{ id: 'm1', seq: 4, body: '{"x":1}', clientId: 'c', ttl: 60, created: 1, expires: 2, visible: 1, claimCount: 1, claimId: 'c1', claimExpires: 9 }],
      claims: [{ id: 'c1', ttl: 30, expires: 9, updated: 1 }],
      remove: ['m2'],
    },
  ],
  countForMigration: [ref],
  dropQueueData: [ref, 't1'],
}
const msg = (): Message => ({ id: 'm1', ttl: 60, age: 2, created: 1000, body: '{"x":1}', claimId: 'c1', claimCount: 1 })
const RESULTS: { [K in DriverOperation]: OpResult<K> } = {
  ping: undefined,
  createQueue: true,
  getQueue: { a: 1 },
  setQueueMetadata: undefined,
  deleteQueue: undefined,
  listQueues: { items: [{ name: 'q1', metadata: { a: 1 } }], next: 'q1', count: 1 },
  stats: { total: 2, claimed: 1, free: 1, oldest: { id: 'm1', age: 3, created: 1 }, newest: { id: 'm2', age: 1, created: 2 } },
  storedBytes: 1234,
  purge: undefined,
  postMessages: ['m1', 'm2'],
  listMessages: { items: [msg()], next: 'm1', includeDelayed: false },
  getMessage: msg(),
  getMessages: [msg()],
  deleteMessage: undefined,
  deleteMessages: undefined,
  popMessages: [{ id: 'm1', ttl: 60, age: 2, body: '1', claimId: 'c9', claimCount: 1 }],
  createClaim: { id: 'c1', age: 0, ttl: 30, messages: [msg()], deadLetter: { queue: 'dlq', ids: ['m3'], ttl: 9 } },
  getClaim: null,
  renewClaim: undefined,
  releaseClaim: undefined,
  listen: undefined,
  fenceQueue: undefined,
  getFence: { token: 't1', to: 'pool-b', state: 'moved' },
  readForMigration: {
    records: [{ id: 'm1', seq: 4, body: '{"x":1}', clientId: 'c', ttl: 60, created: 1, expires: 2, visible: 1, claimCount: 0, claimExpires: 0 }],
    claims: [],
    next: 4,
    end: true,
  },
  readJournal: { entries: [{ id: 'm1', version: 3, record: null }], claims: [{ id: 'c1', ttl: 30, expires: 9, updated: 1 }], reset: true },
  ackJournal: undefined,
  importMessages: undefined,
  countForMigration: 12,
  dropQueueData: undefined,
}

/** Calls `op` on `driver` with its sample arguments. */
const callOp = <K extends DriverOperation>(driver: DataDriver, op: K): Promise<OpResult<K>> =>
  (driver[op] as (...a: OpArgs<K>) => Promise<OpResult<K>>)(...ARGS[op])

function driverMetrics(): Parameters<typeof metered>[1] {
  const registers = [new Registry()]
  return {
    duration: new Histogram({ name: 'd', help: 'd', labelNames: ['operation', 'outcome', 'pool', 'worker'], registers }),
    posted: new Counter({ name: 'p', help: 'p', labelNames: ['pool'], registers }),
    claimed: new Counter({ name: 'c', help: 'c', labelNames: ['pool'], registers }),
    deleted: new Counter({ name: 'x', help: 'x', labelNames: ['pool'], registers }),
  }
}

interface Wrapper {
  name: string
  /** True when values cross a wire (equal, not the same objects). */
  wire: boolean
  make(t: Teardown, inner: DataDriver): Promise<DataDriver>
}

const log = createLogger('test', 'silent')

const WRAPPERS: Wrapper[] = [
  { name: 'wrapDriver (pass-through)', wire: false, make: async (_t, inner) => wrapDriver(inner, (_op, call) => call) },
  { name: 'metered', wire: false, make: async (_t, inner) => metered(inner, driverMetrics(), { pool: 'p', worker: '0' }) },
  {
    name: 'metered over rpc',
    wire: true,
    make: async (t, inner) => {
      const socket = join(await tempDir(t), 'w.sock')
      const server = await serveRpc(metered(inner, driverMetrics(), { pool: 'p' }), socket, log)
      const client = new RpcDriver(socket, { timeoutMs: 5000 })
      t.teardown(async () => {
        await client.close()
        await server.close(1000)
      })
      await client.ready(5000)
      return metered(client, driverMetrics(), { pool: 'p', worker: '0' })
    },
  },
]

t.test('the table names exactly the operations every driver implements', async (t) => {
  t.ok(opsAreTheContract && tableIsTheOps)
  t.same(DRIVER_OPERATIONS, Object.keys(OPERATIONS))
  t.equal(new Set(DRIVER_OPERATIONS).size, DRIVER_OPERATIONS.length, 'no duplicates')
  for (const Driver of [SqliteDriver, RedisDriver]) {
    for (const op of DRIVER_OPERATIONS) {
      const fn: unknown = Driver.prototype[op]
      t.equal(typeof fn, 'function', `${Driver.name}.${op}`)
      t.ok((fn as () => unknown).length <= OPERATIONS[op].arity, `${Driver.name}.${op} declares at most ${OPERATIONS[op].arity} parameters`)
    }
  }
  for (const op of DRIVER_OPERATIONS) {
    const args = ARGS[op]
    const scope = OPERATIONS[op].scope
    t.equal(queueOf(op, args), scope === 'queue' ? args[0] : undefined, `queueOf(${op})`)
    if (scope === 'project') t.type(args[0], 'string')
    if (scope === 'none') t.equal(args.length, 0)
    t.equal(OPERATIONS[op].placement === null, scope !== 'queue', `${op}: placement iff queue-scoped`)
  }
})

t.test('every wrapper exposes every operation', async (t) => {
  const spy = spyDriver()
  const dir = await tempDir(t)
  const embedded = new EmbeddedPool('p', 'sqlite:', { dataDir: dir, durability: 'fast' }, log)
  t.teardown(() => embedded.close())
  const rpc = new RpcDriver(join(dir, 'none.sock'), { timeoutMs: 1000, reconnectMinMs: 60_000 })
  t.teardown(() => rpc.close())
  const drivers: [string, DataDriver][] = [
    ['rpc client', rpc],
    ['embedded pool', embedded.driver],
    ...(await Promise.all(WRAPPERS.filter((w) => !w.wire).map(async (w): Promise<[string, DataDriver]> => [w.name, await w.make(t, spy)]))),
  ]
  for (const [name, d] of drivers) {
    for (const op of DRIVER_OPERATIONS) {
      const fn: unknown = d[op]
      t.equal(typeof fn, 'function', `${name}.${op}`)
    }
    t.equal(typeof d.close, 'function', `${name}.close`)
  }
})

for (const w of WRAPPERS) {
  t.test(`${w.name}: arguments, results and errors pass through unchanged, for every operation`, async (t) => {
    const spy: SpyDriver = spyDriver()
    const d = await w.make(t, spy)
    for (const op of DRIVER_OPERATIONS) {
      spy.answer(op, { value: RESULTS[op] })
      const before = spy.calls.length
      const got = await callOp(d, op)
      t.equal(spy.calls.length, before + 1, `${op}: one call reached the driver`)
      const call = spy.calls.at(-1)!
      t.equal(call.op, op)
      if (w.wire) {
        t.strictSame(call.args, ARGS[op], `${op}: arguments`)
        t.strictSame(got, RESULTS[op], `${op}: result`)
      } else {
        t.equal(call.args.length, ARGS[op].length, `${op}: argument count`)
        ARGS[op].forEach((a, i) => t.equal(call.args[i], a, `${op}: argument ${i} is the caller's own`))
        t.equal(got, RESULTS[op], `${op}: the result is the driver's own`)
      }

      const err = new MissiveError('message_claimed', `no ${op} for you`, { retryAfter: 3 })
      spy.answer(op, { error: err })
      const thrown = await callOp(d, op).then(
        () => t.fail(`${op} should have thrown`),
        (e: unknown) => e,
      )
      if (w.wire) t.match(thrown, { code: 'message_claimed', description: `no ${op} for you`, retryAfter: 3 }, `${op}: error`)
      else t.equal(thrown, err, `${op}: the error is the driver's own`)
      t.type(thrown, MissiveError)
    }
  })
}

t.test('an absent optional argument stays absent through a wrapper and the wire', async (t) => {
  const spy = spyDriver()
  const d = await WRAPPERS.find((w) => w.wire)!.make(t, spy)
  await d.deleteMessage(ref, 'm1')
  await d.deleteMessages(ref, ['m1'])
  const [one, many] = spy.calls.slice(-2)
  t.equal(one!.args[2], undefined)
  t.equal(many!.args[2], undefined)
  t.strictSame(one!.args.slice(0, 2), [ref, 'm1'])
})

t.test('the RPC server refuses a call with more arguments than the operation declares', async (t) => {
  const spy = spyDriver()
  const socket = join(await tempDir(t), 'w.sock')
  const server = await serveRpc(spy, socket, log)
  const client = new RpcDriver(socket, { timeoutMs: 5000 })
  t.teardown(async () => {
    await client.close()
    await server.close(1000)
  })
  await client.ready(5000)
  const err = await client.call('getMessage', [ref, 'm1', 'extra']).catch((e: unknown) => e)
  t.match(err, { code: 'bad_request', description: 'RPC operation "getMessage" takes at most 2 arguments' })
  t.equal(spy.calls.length, 0, 'the driver was not called')
  t.equal(await client.call('getMessage', [ref, 'm1']), undefined, 'the declared arity is served')
  t.equal(spy.calls.length, 1)
})
