import { Writable } from 'node:stream'
import { join } from 'node:path'
import { pino } from 'pino'
import t from 'tap'
import { MissiveError } from '../../shared/errors.js'
import type { Logger } from '../../shared/log.js'
import { RpcDriver, TIMEOUT_DESCRIPTION, UNREACHABLE_DESCRIPTION } from '../../proxy/rpc-client.js'
import { serveRpc } from '../../worker/rpc-server.js'
import { FakeDriver, SECRET } from '../helpers/fake-driver.js'
import { tempDir, waitFor, type Teardown } from '../helpers/index.js'
import type { DriverOperation } from '../../shared/storage/operations.js'
import { statSync } from 'node:fs'

/** A logger that keeps its lines for inspection. */
function memoryLog(): { log: Logger; lines: string[] } {
  const lines: string[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString())
      cb()
    },
  })
  return { log: pino({ level: 'debug' }, stream), lines }
}

async function setup(t: Teardown, opts: { timeoutMs?: number; serverMaxFrame?: number } = {}) {
  const dir = await tempDir(t)
  const socket = join(dir, 'w.sock')
  const fake = new FakeDriver()
  const { log, lines } = memoryLog()
  const server = await serveRpc(fake, socket, log, { maxFrameBytes: opts.serverMaxFrame })
  const client = new RpcDriver(socket, { timeoutMs: opts.timeoutMs ?? 5000, reconnectMinMs: 10, reconnectMaxMs: 50 })
  t.teardown(async () => {
    await client.close()
    await server.close(1000)
  })
  await client.ready(5000)
  return { socket, fake, server, client, lines }
}

const ref = { project: 'p1', queue: 'q1' }

t.test('results cross the wire unchanged', async (t) => {
  const { client, fake, socket } = await setup(t)
  t.equal(client.kind, 'rpc')
  t.ok(client.connected)
  t.equal(statSync(socket).mode & 0o777, 0o600, 'socket is private')
  await client.ping()
  const metadata = JSON.parse('{"_default_message_ttl": 60, "nested": {"a": [1, 2.5, null, true]}, "ünï": "✓", "__proto__": 1}')
  t.equal(await client.createQueue(ref, metadata), true)
  t.equal(await client.createQueue(ref, { other: 1 }), false)
  const got = await client.getQueue(ref)
  t.equal(JSON.stringify(got), JSON.stringify(metadata))
  t.equal(await client.getQueue({ project: 'p1', queue: 'nope' }), null, 'null result')

  const ids = await client.postMessages(ref, [{ body: '{"x":1}' }, { body: '"two"', ttl: 120 }], {
    clientId: 'c',
    defaultTtl: 3600,
    postBytes: 10,
    queuePolicy: true,
  })
  t.equal(ids.length, 2)
  const listing = await client.listQueues('p1', { limit: 1 })
  t.same(listing, { items: [{ name: 'q1' }], next: 'q1' })
  const short = await client.listQueues('p1', { limit: 10 })
  t.notOk('next' in short, 'absent optional field stays absent')
  const msg = await client.getMessage(ref, ids[1])
  t.same(msg, { id: ids[1], ttl: 120, age: 0, created: 0, body: '"two"', claimCount: 0 })
  t.notOk(msg !== null && 'claimId' in msg)
  t.equal(await client.releaseClaim(ref, 'c1'), undefined, 'void result')

  await client.deleteMessage(ref, ids[0])
  await client.deleteMessages(ref, [ids[1]], undefined)
  const del = fake.calls.filter((c) => c.op.startsWith('deleteMessage'))
  t.equal(del[0].args[2], undefined, 'an omitted optional argument arrives as undefined, not null')
  t.equal(del[1].args[2], undefined)
  await client.deleteMessage(ref, 'x', 'claim-1')
  t.equal(fake.calls.at(-1)!.args[2], 'claim-1')
})

t.test('errors keep their code; other exceptions become internal without details', async (t) => {
  const { client, lines } = await setup(t)
  const notFound = await client.setQueueMetadata({ project: 'p', queue: 'missing' }, {}).catch((e: unknown) => e)
  t.type(notFound, MissiveError)
  t.match(notFound, { code: 'not_found', description: 'Queue missing does not exist', status: 404 })

  const unav = await client.stats({ project: 'p', queue: 'unavailable' }).catch((e: unknown) => e)
  t.match(unav, { code: 'unavailable', retryAfter: 7, description: 'backend down' })

  const boom = (await client.stats({ project: 'p', queue: 'boom' }).catch((e: unknown) => e)) as MissiveError
  t.type(boom, MissiveError)
  t.equal(boom.code, 'internal')
  t.equal(boom.status, 500)
  t.notMatch(JSON.stringify({ ...boom.toWire(), message: boom.message, stack: boom.stack }), SECRET, 'nothing of the cause leaks')
  t.ok(lines.some((l) => l.includes(SECRET) && l.includes('rpc operation failed')), 'the worker logged it')

  const unknown = await client.call('constructor' as DriverOperation, []).catch((e: unknown) => e)
  t.match(unknown, { code: 'bad_request' }, 'only contract operations can be called')
  t.ok(client.connected, 'the connection survives all of that')
})

t.test('many concurrent calls are multiplexed and answered out of order', async (t) => {
  const { client } = await setup(t)
  const n = 2000
  const calls = Array.from({ length: n }, (_, i) => client.getMessage(ref, `echo-${i}-${(i * 7919) % 20}`))
  const results = await Promise.all(calls)
  let ok = 0
  results.forEach((m, i) => {
    if (m !== null && m.id.startsWith(`echo-${i}-`) && m.body === JSON.stringify({ n: i })) ok++
  })
  t.equal(ok, n, 'every call got its own answer')
  t.equal(client.pendingCalls, 0)
})

t.test('several connections share the calls', async (t) => {
  const dir = await tempDir(t)
  const socket = join(dir, 'w.sock')
  const server = await serveRpc(new FakeDriver(), socket, memoryLog().log)
  const client = new RpcDriver(socket, { timeoutMs: 5000, connections: 3 })
  t.teardown(async () => {
    await client.close()
    await server.close()
  })
  await client.ready(5000)
  const results = await Promise.all(Array.from({ length: 300 }, (_, i) => client.getMessage(ref, `echo-${i}-0`)))
  t.equal(results.filter((m, i) => m?.id === `echo-${i}-0`).length, 300)
})

t.test('a call the worker does not answer in time fails with unavailable', async (t) => {
  const { client } = await setup(t, { timeoutMs: 200 })
  const started = Date.now()
  const err = await client.stats({ project: 'p', queue: 'sleep-3000' }).catch((e: unknown) => e)
  const took = Date.now() - started
  t.match(err, { code: 'unavailable', description: TIMEOUT_DESCRIPTION, retryAfter: 1 })
  t.ok(took >= 190 && took < 1000, `timed out after ${took} ms`)
  t.equal(client.pendingCalls, 0)
  await client.ping()
  t.pass('the connection is still usable')
})

t.test('closing the server drains calls in flight and refuses new ones', async (t) => {
  const { client, server } = await setup(t)
  const slow = client.stats({ project: 'p', queue: 'sleep-300' })
  await waitFor(() => server.inFlight === 1, { intervalMs: 5, what: 'the call to reach the server' })
  t.equal(server.inFlight, 1)
  // close() marks the server draining before it returns its promise.
  const closing = server.close(5000)
  const refused = await client.ping().catch((e: unknown) => e)
  t.match(refused, { code: 'unavailable' }, 'new calls are refused while draining')
  t.same(await slow, { total: 0, claimed: 0, free: 0 }, 'the call in flight completed')
  await closing
  await waitFor(() => !client.connected, { what: 'the client to see the connection closed' })
  t.notOk(client.connected, 'connection closed after the drain')
  const after = await client.ping().catch((e: unknown) => e)
  t.match(after, { code: 'unavailable', description: UNREACHABLE_DESCRIPTION }, 'and then calls fail fast')
})

t.test('an oversize request drops the connection; the client fails the call and reconnects', async (t) => {
  const { client, lines } = await setup(t, { serverMaxFrame: 4096 })
  const err = await client.postMessages(ref, [{ body: JSON.stringify('z'.repeat(10_000)) }], {
    clientId: 'c',
    defaultTtl: 3600,
    postBytes: 10_000,
    queuePolicy: true,
  }).catch((e: unknown) => e)
  t.match(err, { code: 'unavailable' })
  t.ok(lines.some((l) => l.includes('protocol violation')), 'the server logged the violation')
  await client.ready(2000)
  await client.ping()
  t.pass('reconnected')

  const tooBig = await client.getMessage(ref, 'big-10000').catch((e: unknown) => e)
  t.match(tooBig, { code: 'internal' }, 'an oversize reply becomes an internal error')
  await client.ping()
})

t.test('a client with no worker fails fast and connects once the worker appears', async (t) => {
  const dir = await tempDir(t)
  const socket = join(dir, 'late.sock')
  const client = new RpcDriver(socket, { timeoutMs: 5000, reconnectMinMs: 10, reconnectMaxMs: 40 })
  t.teardown(() => client.close())
  t.notOk(client.connected)
  const started = Date.now()
  const err = await client.ping().catch((e: unknown) => e)
  t.match(err, { code: 'unavailable', description: UNREACHABLE_DESCRIPTION, retryAfter: 1 })
  t.ok(Date.now() - started < 1000, 'failed fast (the call timeout is 5 s)')
  await t.rejects(client.ready(100), { code: 'unavailable' }, 'ready() can time out')

  const server = await serveRpc(new FakeDriver(), socket, memoryLog().log)
  t.teardown(() => server.close())
  await client.ready(2000)
  await client.ping()
  const closing = client.close()
  const closed = await client.ping().catch((e: unknown) => e)
  t.match(closed, { code: 'unavailable' }, 'a closed client refuses calls')
  await closing
})

t.test('a live socket is not stolen; a stale one is replaced', async (t) => {
  const { socket } = await setup(t)
  await t.rejects(serveRpc(new FakeDriver(), socket, memoryLog().log), /already serving/)
})
