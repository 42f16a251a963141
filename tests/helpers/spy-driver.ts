/**
 * A `DataDriver` that records every call and answers each operation as the test says: with a
 * value or by throwing. For the wrapper tests (tests/rpc/wrappers.test.ts): it is written with
 * rest parameters on purpose, independently of the generator in shared/storage/operations.ts
 * that it checks.
 */
import type { DataDriver } from '../../shared/storage/contract.js'
import { DRIVER_OPERATIONS, type DriverOperation, type OpResult } from '../../shared/storage/operations.js'

/** What a spied operation does: resolve with `value`, or reject with `error`. */
export type SpyAnswer<K extends DriverOperation> = { value: OpResult<K> } | { error: unknown }

export interface SpyDriver extends DataDriver {
  /** Every call, in order, with its arguments exactly as received (same references). */
  readonly calls: { op: string; args: unknown[] }[]
  /** Sets what `op` answers from now on (default: resolves with undefined). */
  answer<K extends DriverOperation>(op: K, a: SpyAnswer<K>): void
}

export function spyDriver(): SpyDriver {
  const answers = new Map<string, { value: unknown } | { error: unknown }>()
  const calls: { op: string; args: unknown[] }[] = []
  const spy: Record<string, unknown> = {
    kind: 'spy',
    calls,
    close: async () => {},
    answer: (op: string, a: { value: unknown } | { error: unknown }) => answers.set(op, a),
  }
  for (const op of DRIVER_OPERATIONS) {
    spy[op] = async (...args: unknown[]) => {
      calls.push({ op, args })
      const a = answers.get(op)
      if (a !== undefined && 'error' in a) throw a.error
      return a?.value
    }
  }
  return spy as unknown as SpyDriver
}
