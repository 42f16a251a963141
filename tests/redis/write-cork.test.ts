/**
 * Script calls issued in one tick leave in one write to Redis (scripts.ts, `Scripts.#cork`): the
 * socket is corked at the first call of a tick and uncorked at its end, so the calls of one
 * coalescer flush (one per queue and kind) become one `writev`, not a system call each. Checked
 * on the socket itself (its `_write` / `_writev`), and every call still gets its own reply.
 */
import { randomUUID } from 'node:crypto'
import type { Socket } from 'node:net'
import t from 'tap'
import { Redis } from 'ioredis'
import { Scripts } from '../../worker/storage/redis/scripts.js'
import { queueKeys } from '../../worker/storage/redis/keys.js'
import { startRedis } from '../helpers/index.js'

const server = await startRedis(t, { appendfsync: 'everysec' })

/** Counts the socket's low-level writes (`_write`: one chunk; `_writev`: several at once). */
function countWrites(stream: Socket): { write: number; writev: number; chunks: number } {
  const counts = { write: 0, writev: 0, chunks: 0 }
  const s = stream as unknown as {
    _write: (...a: unknown[]) => unknown
    _writev: (chunks: unknown[], ...a: unknown[]) => unknown
  }
  const write = s._write.bind(stream)
  const writev = s._writev.bind(stream)
  s._write = (...a) => {
    counts.write++
    counts.chunks++
    return write(...a)
  }
  s._writev = (chunks, ...a) => {
    counts.writev++
    counts.chunks += chunks.length
    return writev(chunks, ...a)
  }
  return counts
}

t.test('script calls of one tick go out in one writev; each gets its own reply', async (t) => {
  const redis = new Redis({ host: '127.0.0.1', port: server.port, maxRetriesPerRequest: 1 })
  t.teardown(() => redis.disconnect())
  await redis.ping()
  const scripts = new Scripts(redis)
  await scripts.load()
  const refs = Array.from({ length: 5 }, (_, i) => ({ project: `p-${randomUUID()}`, queue: `q${i}` }))
  // Each queue's metadata names it, so each reply shows which call it answers.
  for (const [i, ref] of refs.entries()) await scripts.run('createQueue', queueKeys(ref).list, [Date.now(), `{"n":${i}}`, '', '', '', '', '', ''])

  const counts = countWrites((redis as unknown as { stream: Socket }).stream)
  // Five calls in one tick, as a coalescer flush issues them (a queue each).
  const replies = await Promise.all(refs.map((ref) => scripts.run<string>('getQueue', queueKeys(ref).list, [])))
  t.same(counts, { write: 0, writev: 1, chunks: 5 }, 'one writev of the five commands')
  t.same(replies, refs.map((_, i) => `{"n":${i}}`), 'each call answered with its own queue')

  // Calls in separate ticks each go out on their own, as before.
  for (const ref of refs.slice(0, 2)) await scripts.run('getQueue', queueKeys(ref).list, [])
  t.same(counts, { write: 2, writev: 1, chunks: 7 }, 'a call alone in its tick: a write of its own')
})
