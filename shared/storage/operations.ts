/**
 * The operation table of the storage contract: one entry per `DataDriver` operation, holding what
 * a wrapper needs to know about an operation without knowing the operation itself. The wrappers
 * that stand for a driver — metrics (worker/storage/metered.ts), the RPC client and server
 * (proxy/rpc-client.ts, worker/rpc-server.ts), the pool served inside the proxy
 * (proxy/embedded.ts) — are generated from it instead of writing the methods out one by one.
 *
 * The table is checked against `DataDriver` at compile time: it has exactly one entry per method
 * of the contract (`close` aside: it is the driver's lifecycle, not an operation), and each
 * entry's `arity` and `scope` agree with that method's signature.
 *
 * Hot path: the generated methods allocate what the hand-written ones did — no closure per call,
 * at most the one arguments array an RPC request carries anyway. perf/driver-wrappers.ts measures
 * them against the hand-written forms.
 */
import type { DataDriver, QueueRef } from './contract.js'

/** The names of the members of `T` that are methods. */
type MethodName<T> = { [K in keyof T]-?: T[K] extends (...args: never[]) => unknown ? K : never }[keyof T]

/** An operation of the contract: every method of `DataDriver` but `close`. */
export type DriverOperation = Exclude<MethodName<DataDriver>, 'close'>

/** The arguments of an operation, as a tuple. */
export type OpArgs<K extends DriverOperation> = Parameters<DataDriver[K]>

/** What an operation's promise resolves to. */
export type OpResult<K extends DriverOperation> = Awaited<ReturnType<DataDriver[K]>>

/** The methods of every operation: what a wrapper implements (it adds `kind` and `close`). */
export type DriverOperations = Pick<DataDriver, DriverOperation>

/** What an operation's first argument names: a queue (`QueueRef`), a project, or nothing. */
type ScopeOf<K extends DriverOperation> = OpArgs<K> extends []
  ? 'none'
  : OpArgs<K>[0] extends QueueRef
    ? 'queue'
    : OpArgs<K>[0] extends string
      ? 'project'
      : never

/** How many positional parameters an operation declares, trailing optional ones included. */
type ArityOf<K extends DriverOperation> = Required<OpArgs<K>>['length']

/** What a router does about the queue's placement around a call (`scope: 'queue'` only). */
export type Placement = 'place' | 'find' | 'drop'

/** What a wrapper knows about one operation. */
export interface OperationInfo<K extends DriverOperation = DriverOperation> {
  /** `read` never changes what is stored (safe to retry after `unavailable`); `write` may. */
  readonly access: 'read' | 'write'
  /**
   * What the first argument names: `queue` (a `QueueRef`: the call is routed to the queue's
   * pool), `project` (a project name: the call concerns every pool) or `none` (`ping`).
   */
  readonly scope: ScopeOf<K>
  /**
   * For queue operations, what routing does: `place` — the call may create the queue, so a
   * queue with no pool yet is placed first; `find` — the queue's pool, and a queue with no pool
   * is simply missing; `drop` — the call deletes the queue, whose placement goes with it.
   * `null` for the other scopes.
   */
  readonly placement: ScopeOf<K> extends 'queue' ? Placement : null
  /**
   * The method's positional parameters, trailing optional ones included: the RPC server refuses
   * a request carrying more.
   */
  readonly arity: ArityOf<K>
}

/**
 * Every operation of the contract, in the order of `DataDriver`. Arguments and results cross the
 * RPC wire the same way for every operation (shared/rpc/frames.ts): the table holds nothing
 * per-operation for it beyond `arity`.
 */
export const OPERATIONS = {
  ping: { access: 'read', scope: 'none', placement: null, arity: 0 },
  createQueue: { access: 'write', scope: 'queue', placement: 'place', arity: 2 },
  getQueue: { access: 'read', scope: 'queue', placement: 'find', arity: 1 },
  setQueueMetadata: { access: 'write', scope: 'queue', placement: 'find', arity: 2 },
  deleteQueue: { access: 'write', scope: 'queue', placement: 'drop', arity: 1 },
  listQueues: { access: 'read', scope: 'project', placement: null, arity: 2 },
  stats: { access: 'read', scope: 'queue', placement: 'find', arity: 1 },
  storedBytes: { access: 'read', scope: 'queue', placement: 'find', arity: 1 },
  purge: { access: 'write', scope: 'queue', placement: 'find', arity: 1 },
  postMessages: { access: 'write', scope: 'queue', placement: 'place', arity: 3 },
  listMessages: { access: 'read', scope: 'queue', placement: 'find', arity: 2 },
  getMessage: { access: 'read', scope: 'queue', placement: 'find', arity: 2 },
  getMessages: { access: 'read', scope: 'queue', placement: 'find', arity: 2 },
  deleteMessage: { access: 'write', scope: 'queue', placement: 'find', arity: 3 },
  deleteMessages: { access: 'write', scope: 'queue', placement: 'find', arity: 3 },
  popMessages: { access: 'write', scope: 'queue', placement: 'find', arity: 2 },
  createClaim: { access: 'write', scope: 'queue', placement: 'find', arity: 2 },
  getClaim: { access: 'read', scope: 'queue', placement: 'find', arity: 2 },
  renewClaim: { access: 'write', scope: 'queue', placement: 'find', arity: 3 },
  releaseClaim: { access: 'write', scope: 'queue', placement: 'find', arity: 2 },
  listen: { access: 'write', scope: 'queue', placement: 'find', arity: 2 },
  // Migration (shared/storage/migration.ts): called by the migration runner on one pool's driver.
  fenceQueue: { access: 'write', scope: 'queue', placement: 'find', arity: 3 },
  getFence: { access: 'read', scope: 'queue', placement: 'find', arity: 1 },
  readForMigration: { access: 'read', scope: 'queue', placement: 'find', arity: 3 },
  readJournal: { access: 'read', scope: 'queue', placement: 'find', arity: 2 },
  ackJournal: { access: 'write', scope: 'queue', placement: 'find', arity: 3 },
  importMessages: { access: 'write', scope: 'queue', placement: 'find', arity: 3 },
  countForMigration: { access: 'read', scope: 'queue', placement: 'find', arity: 1 },
  dropQueueData: { access: 'write', scope: 'queue', placement: 'find', arity: 2 },
} as const satisfies { readonly [K in DriverOperation]: OperationInfo<K> }

/** Names of every operation, in table order (RPC dispatch, metrics labels, tests). */
export const DRIVER_OPERATIONS = Object.keys(OPERATIONS) as readonly DriverOperation[]

// A Map rather than `Object.hasOwn(OPERATIONS, name)` and `OPERATIONS[name].arity`: the RPC
// server checks every request, and one Map lookup is the cheapest there (perf/driver-wrappers.ts).
const ARITY: ReadonlyMap<string, number> = new Map(DRIVER_OPERATIONS.map((op) => [op, OPERATIONS[op].arity]))

/** True when `name` is an operation of the contract (`constructor`, `close`, `kind` are not). */
export function isOperation(name: string): name is DriverOperation {
  return ARITY.has(name)
}

/** The number of parameters the operation `name` declares; undefined when it is not an operation. */
export function arityOf(name: string): number | undefined {
  return ARITY.get(name)
}

/** The queue a call concerns: its first argument for `scope: 'queue'` operations, else undefined. */
export function queueOf<K extends DriverOperation>(op: K, args: OpArgs<K>): QueueRef | undefined {
  return OPERATIONS[op].scope === 'queue' ? (args[0] as QueueRef) : undefined
}

/** The method of one operation, as the contract declares it (`this` as it is called with). */
export type OperationMethod<K extends DriverOperation, This = unknown> = (this: This, ...args: OpArgs<K>) => Promise<OpResult<K>>

/** Makes the method of one operation. Runs once per operation when the methods are made, not per call. */
export type MethodFactory<This = unknown> = <K extends DriverOperation>(op: K) => OperationMethod<K, This>

/**
 * Defines every operation on `target` (non-enumerable, like class methods) as the method
 * `make(op)` built for it. On a class prototype, declare the methods with
 * `interface MyDriver extends DataDriver {}` next to the class.
 *
 * Hot path: write the method with a rest parameter and pass it on spread (`(...args) =>
 * inner(...args)`), or as the array it is (`call(op, args)`): V8 then allocates no more than the
 * hand-written method did (perf/driver-wrappers.ts). Packing the arguments into a new array and
 * handing it to another closure measured slower and allocated more.
 */
export function defineOperations<T extends object, This = T>(target: T, make: MethodFactory<This>): T & DriverOperations {
  for (const op of DRIVER_OPERATIONS) {
    Object.defineProperty(target, op, { value: make(op), writable: true, configurable: true })
  }
  return target as T & DriverOperations
}

/** Calls `driver[op]` with the arguments array `args`. */
export function invoke<K extends DriverOperation>(driver: DataDriver, op: K, args: OpArgs<K>): Promise<OpResult<K>> {
  return (driver[op] as OperationMethod<K>).apply(driver, args)
}

/**
 * Makes one operation of a wrapper: `call` runs it on the wrapped driver (bound once, not per
 * call); the method returned runs for each call and may observe or replace what `call` does.
 */
export type Around = <K extends DriverOperation>(op: K, call: OperationMethod<K>) => OperationMethod<K>

/**
 * A driver whose every operation goes through `around`. It inherits everything else from `inner`
 * (`kind`, and any member of the wrapped class), except `close`, which it forwards to `inner`.
 */
export function wrapDriver<T extends DataDriver>(inner: T, around: Around): T {
  const wrapped = Object.create(inner) as T
  Object.defineProperty(wrapped, 'close', { value: () => inner.close(), writable: true, configurable: true })
  return defineOperations(wrapped, <K extends DriverOperation>(op: K) => {
    const fn = inner[op] as OperationMethod<K, T>
    return around(op, (...args) => fn.call(inner, ...args))
  })
}
