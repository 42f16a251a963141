/**
 * What every storage driver shares: ages and the chunking of large posts. Zaqar's queue rules
 * live in shared/storage/queue-policy.ts, the errors in shared/storage/errors.ts.
 */
import { POST_CHUNK, POST_CHUNK_BYTES, type NewMessage } from '../../shared/storage/contract.js'

/** Whole seconds between `from` and `now`, never negative (a clock may step back). */
export const ageOf = (from: number, now: number): number => Math.max(0, Math.floor((now - from) / 1000))

/** Bytes of message bodies (UTF-16 length: close enough for a work budget). */
export function bodyBytes(messages: NewMessage[]): number {
  let n = 0
  for (const m of messages) n += m.body.length
  return n
}

/** [from, to) ranges of at most POST_CHUNK messages and POST_CHUNK_BYTES (one message at least). */
export function chunksOf(messages: NewMessage[]): [number, number][] {
  const out: [number, number][] = []
  let from = 0
  let bytes = 0
  for (let i = 0; i < messages.length; i++) {
    const size = messages[i].body.length
    if (i > from && (i - from >= POST_CHUNK || bytes + size > POST_CHUNK_BYTES)) {
      out.push([from, i])
      from = i
      bytes = 0
    }
    bytes += size
  }
  out.push([from, messages.length])
  return out
}
