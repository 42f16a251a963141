/**
 * Issue 16's known defect: on a Redis pool, a WebSocket subscriber could get the same pushed
 * message twice, when the pool's pub/sub announcement of a post reached the proxy before the
 * post's own answer from the worker (proxy/websocket-push.ts). The real hub and a real Redis
 * store; each case forces one arrival order of the two ways a post reaches the hub. And a
 * subscribed queue deleted or moved elsewhere is marked again at once (`placementRemoved`).
 */
import t from 'tap'
import { SocketSubscriptions, type PushSocket } from '../../proxy/websocket-push.js'
import type { NewMessage, QueueRef } from '../../shared/storage/contract.js'
import { openDriver } from '../../worker/storage/index.js'
import { startRedis, tempDir, waitFor } from '../helpers/index.js'

/** Lets every pending setImmediate callback and promise settle (event-loop turns, not time). */
const turns = async (n = 3): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r))
}

t.test('a post reaching the hub twice is pushed once, whatever the order', async (t) => {
  const redis = await startRedis(t, { appendfsync: 'everysec' })
  const driver = await openDriver(`${redis.url}/0`, { dataDir: await tempDir(t, 'missive-push-once-'), durability: 'fast' })
  t.teardown(() => driver.close())
  let reads = 0
  const hub = new SocketSubscriptions(1 << 20)
  hub.storage = {
    listen: (ref, ms) => driver.listen(ref, ms),
    getMessages: async (ref, ids) => {
      const found = await driver.getMessages(ref, ids)
      reads++
      return found
    },
  }
  const frames: string[] = []
  const socket: PushSocket = { id: 's1', closed: false, binary: false, push: (f) => (frames.push(String(f)), true) }
  const ref: QueueRef = { project: 'p-once', queue: 'q' }
  t.not(hub.subscribe(ref, socket, { ttl: 600, options: {} }, 10), null)

  const post = async (n: number): Promise<{ ids: string[]; messages: NewMessage[] }> => {
    const messages: NewMessage[] = Array.from({ length: n }, (_, i) => ({ body: JSON.stringify({ i }), ttl: 300 }))
    const ids = await driver.postMessages(ref, messages, { clientId: '3381af92-2b9e-11e3-b191-71861300734c', defaultTtl: 3600, postBytes: 100, queuePolicy: true })
    return { ids, messages }
  }
  const pushedIds = (): string[] => frames.map((f) => (JSON.parse(f) as { id: string }).id)

  await t.test('the announcement first, read before the post path answers', async (t) => {
    frames.length = 0
    const { ids, messages } = await post(2)
    hub.remote(ref, ids)
    await waitFor(() => frames.length === 2, { what: 'the announced post pushed' })
    hub.posted(ref, ids, messages)
    await turns()
    t.same(pushedIds(), ids, 'each message once')
  })

  await t.test('the announcement first, the post path answers while it is read', async (t) => {
    frames.length = 0
    const before = reads
    const { ids, messages } = await post(3)
    hub.remote(ref, ids)
    hub.posted(ref, ids, messages)
    await waitFor(() => reads === before + 1 && frames.length >= 3, { what: 'the read done and the post pushed' })
    await turns()
    t.same(pushedIds(), ids, 'each message once')
  })

  await t.test('the post path first, then the announcement (the echo)', async (t) => {
    frames.length = 0
    const before = reads
    const { ids, messages } = await post(2)
    hub.posted(ref, ids, messages)
    hub.remote(ref, ids)
    await waitFor(() => frames.length === 2, { what: 'the post pushed' })
    await turns()
    t.same(pushedIds(), ids, 'each message once')
    t.equal(reads, before, 'the echo is not even read')
  })

  await t.test('an announcement whose read fails leaves the push to the post path', async (t) => {
    frames.length = 0
    const { ids, messages } = await post(1)
    const storage = hub.storage
    hub.storage = { listen: async () => undefined, getMessages: async () => Promise.reject(new Error('store down')) }
    hub.remote(ref, ids)
    await turns()
    hub.storage = storage
    hub.posted(ref, ids, messages)
    await waitFor(() => frames.length === 1, { what: 'the post pushed' })
    await turns()
    t.same(pushedIds(), ids)
  })
})

t.test("a subscribed queue whose placement was removed is marked again at once", async (t) => {
  const marks: string[] = []
  const hub = new SocketSubscriptions(1 << 20)
  hub.storage = {
    listen: async (ref) => void marks.push(ref.queue),
    getMessages: async () => [],
  }
  const socket: PushSocket = { id: 's2', closed: false, binary: false, push: () => true }
  t.not(hub.subscribe({ project: 'p', queue: 'q' }, socket, { ttl: 600, options: {} }, 10), null)
  t.same(marks, ['q'], 'marked when subscribed')
  hub.placementRemoved({ project: 'p', queue: 'other' })
  hub.placementRemoved({ project: 'p', queue: 'q' })
  t.same(marks, ['q', 'q'], 'marked again (where it lives now); a queue nobody subscribes to here is not')
  t.teardown(() => hub.dropSocket(socket))
})

