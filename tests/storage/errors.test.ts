/**
 * Typed storage errors: each one worded exactly as Zaqar words it (proxy/storage-errors.ts,
 * through the transport's errorReply), and each one crossing the real RPC boundary as the same
 * class with the same facts, its cause left behind.
 */
import { join } from 'node:path'
import t from 'tap'
import { RpcDriver } from '../../proxy/rpc-client.js'
import { storageErrorHttp } from '../../proxy/storage-errors.js'
import { errorReply } from '../../proxy/transport.js'
import { MissiveError } from '../../shared/errors.js'
import { createLogger } from '../../shared/log.js'
import type { QueueRef, QueueStats } from '../../shared/storage/contract.js'
import { DRIVER_OPERATIONS } from '../../shared/storage/operations.js'
import {
  BadStoreConfig,
  ClaimGone,
  ClaimNotFound,
  ClaimNotHeld,
  errorFromWire,
  FenceConflict,
  MessageClaimed,
  PostTooLarge,
  QueueFull,
  QueueMoved,
  QueueNotFound,
  StorageError,
  StoreUnavailable,
} from '../../shared/storage/errors.js'
import { serveRpc } from '../../worker/rpc-server.js'
import { FakeDriver, SECRET } from '../helpers/fake-driver.js'
import { tempDir } from '../helpers/index.js'

const log = createLogger('test', 'silent')
const ref: QueueRef = { project: 'proj', queue: 'q1' }
const MID = '9b2f1c4e-8d7a-4e3b-a1f0-1234567890ab'
const CID = '0c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f'

interface Case {
  name: string
  err: StorageError
  status: number
  title: string
  description: string
  code: string
  retryAfter?: string
}

const CASES: Case[] = [
  {
    name: 'queue moved (a migration fence)',
    err: new QueueMoved(ref, { token: 'mig-1', to: 'pool-b', state: 'moved' }),
    code: 'unavailable',
    status: 503,
    title: 'Service temporarily unavailable',
    description: 'Queue q1 is being moved to another pool. Please try again in a few seconds.',
    retryAfter: '1',
  },
  {
    name: 'fence conflict',
    err: new FenceConflict(ref, { token: 'mig-2', to: 'pool-c', state: 'importing' }),
    code: 'conflict',
    status: 409,
    title: 'Resource conflict',
    description: 'Queue q1 is already being moved.',
  },
  {
    name: 'fence conflict (no fence)',
    err: new FenceConflict(ref, null),
    code: 'conflict',
    status: 409,
    title: 'Resource conflict',
    description: 'Queue q1 is already being moved.',
  },
  { name: 'queue not found', err: new QueueNotFound(ref), code: 'not_found', status: 404, title: 'Not found', description: 'Queue q1 does not exist for project proj' },
  {
    name: 'claim not found',
    err: new ClaimNotFound(ref, CID),
    code: 'not_found',
    status: 404,
    title: 'Not found',
    description: `Claim ${CID} does not exist in queue q1 for project proj`,
  },
  {
    name: 'message claimed',
    err: new MessageClaimed(ref, MID),
    code: 'message_claimed',
    status: 403,
    title: 'Unable to delete',
    description: 'This message is claimed; it cannot be deleted without a valid claim ID.',
  },
  {
    name: 'message claimed (bulk)',
    err: new MessageClaimed(ref),
    code: 'message_claimed',
    status: 403,
    title: 'Unable to delete',
    description: 'This message is claimed; it cannot be deleted without a valid claim ID.',
  },
  {
    name: 'claim not held',
    err: new ClaimNotHeld(ref, MID, CID),
    code: 'claim_invalid',
    status: 400,
    title: 'Unable to delete',
    description: 'A claim was specified, but the message is not currently claimed.',
  },
  {
    name: 'claim gone',
    err: new ClaimGone(ref, MID, 'garbage'),
    code: 'claim_invalid',
    status: 400,
    title: 'Unable to delete',
    description: 'The specified claim does not exist or has expired.',
  },
  {
    name: 'post too large',
    err: new PostTooLarge(ref, 100),
    code: 'bad_request',
    status: 400,
    title: 'Invalid API request',
    description: 'Message collection size is too large. Max size 100',
  },
  {
    name: 'queue full (quota)',
    err: new QueueFull(ref, 100),
    code: 'quota_exceeded',
    status: 403,
    title: 'Quota exceeded',
    description: `Queue ${ref.queue} may hold at most 100 messages (this project's quota); consume some, or ask for a larger quota.`,
  },
  {
    name: 'bad store config',
    err: new BadStoreConfig('appendonly is "no" (needs yes)'),
    code: 'bad_request',
    status: 400,
    title: 'Invalid API request',
    description: 'appendonly is "no" (needs yes)',
  },
  {
    name: 'store closed',
    err: new StoreUnavailable('closed'),
    code: 'unavailable',
    status: 503,
    title: 'Service temporarily unavailable',
    description: 'The message store is closed.',
    retryAfter: '1',
  },
  {
    name: 'post interrupted',
    err: new StoreUnavailable('interrupted', 'postMessages'),
    code: 'unavailable',
    status: 503,
    title: 'Service temporarily unavailable',
    description:
      'The messages could not be enqueued: the post was interrupted (the queue was purged or deleted, or the post stalled). Nothing was stored; retry.',
    retryAfter: '1',
  },
  {
    name: 'queue busy with a large post',
    err: new StoreUnavailable('busy', 'postMessages'),
    code: 'unavailable',
    status: 503,
    title: 'Service temporarily unavailable',
    description: 'The messages could not be enqueued: a large post to the queue is still being stored. Nothing was stored; retry.',
    retryAfter: '1',
  },
]

/** The words of a store failure per operation (Zaqar's, where it has them): the spec, spelled out. */
const FAILURES: Record<(typeof DRIVER_OPERATIONS)[number], string> = {
  ping: 'The message store is not available.',
  createQueue: 'Queue could not be created.',
  getQueue: 'Queue metadata could not be retrieved.',
  setQueueMetadata: 'Queue metadata could not be updated.',
  deleteQueue: 'Queue could not be deleted.',
  listQueues: 'Queues could not be listed.',
  stats: 'Queue stats could not be read.',
  storedBytes: 'Queue stats could not be read.',
  purge: 'Queue could not be purged.',
  postMessages: 'Messages could not be enqueued.',
  listMessages: 'Messages could not be listed.',
  getMessage: 'Message could not be retrieved.',
  getMessages: 'Messages could not be retrieved.',
  deleteMessage: 'Unable to delete message.',
  deleteMessages: 'Messages could not be deleted.',
  popMessages: 'Messages could not be popped.',
  createClaim: 'Claim could not be created.',
  getClaim: 'Claim could not be queried.',
  renewClaim: 'Claim could not be updated.',
  releaseClaim: 'Claim could not be deleted.',
  listen: 'The message store is not available.',
  fenceQueue: 'Queue could not be fenced.',
  getFence: 'Queue fence could not be read.',
  readForMigration: 'Messages could not be read for migration.',
  readJournal: 'Migration journal could not be read.',
  ackJournal: 'Migration journal could not be acknowledged.',
  importMessages: 'Messages could not be imported.',
  countForMigration: 'Messages could not be counted.',
  dropQueueData: 'Queue data could not be dropped.',
}
for (const op of DRIVER_OPERATIONS) {
  CASES.push({
    name: `store unreachable during ${op}`,
    err: new StoreUnavailable('unreachable', op, new Error(SECRET)),
    code: 'unavailable',
    status: 503,
    title: 'Service temporarily unavailable',
    description: `${FAILURES[op]} Please try again in a few seconds.`,
    retryAfter: '1',
  })
}

t.test('every typed error → exact status, title and description', async (t) => {
  for (const c of CASES) {
    t.same(storageErrorHttp(c.err), { status: c.status, title: c.title, description: c.description }, c.name)
    t.equal(c.err.code, c.code, `${c.name}: coarse code`)
    t.equal(c.err.status, c.status, `${c.name}: the code's status agrees with the wording`)
    t.equal(c.err.description, undefined, `${c.name}: the store carries no wording`)
    t.type(c.err, MissiveError)
  }
})

t.test('the transport answers with them', async (t) => {
  for (const c of CASES) {
    const reply = errorReply(c.err, log, 'req-1')
    t.equal(reply.status, c.status, c.name)
    t.same(JSON.parse(reply.body!), { title: c.title, description: c.description }, `${c.name}: body`)
    const retry = reply.headers?.find(([k]) => k === 'retry-after')?.[1]
    t.equal(retry, c.retryAfter, `${c.name}: retry-after`)
    t.notMatch(reply.body!, SECRET, `${c.name}: nothing of the cause reaches the client`)
  }
})

t.test('a wrapped store error is kept as cause', async (t) => {
  const cause = new Error('SQLITE_BUSY')
  const err = new StoreUnavailable('unreachable', 'purge', cause)
  t.equal(err.cause, cause)
  t.same(err.data(), { reason: 'unreachable', operation: 'purge' })
})

/** A driver whose `stats` throws the error of case number `queue`. */
class ThrowingDriver extends FakeDriver {
  override async stats(r: QueueRef): Promise<QueueStats> {
    const c = CASES[Number(r.queue)]
    if (c !== undefined) throw c.err
    return super.stats(r)
  }
}

t.test('typed errors cross the RPC boundary as the same class with the same facts', async (t) => {
  const dir = await tempDir(t)
  const socket = join(dir, 'w.sock')
  const server = await serveRpc(new ThrowingDriver(), socket, log)
  const client = new RpcDriver(socket, { timeoutMs: 5000 })
  t.teardown(async () => {
    await client.close()
    await server.close(1000)
  })
  await client.ready(5000)
  for (let i = 0; i < CASES.length; i++) {
    const c = CASES[i]
    const got = (await client.stats({ project: 'p', queue: String(i) }).catch((e: unknown) => e)) as StorageError
    t.type(got, c.err.constructor as typeof StorageError, `${c.name}: same class`)
    t.equal(got.kind, c.err.kind)
    t.equal(got.code, c.err.code)
    t.same(got.data(), c.err.data(), `${c.name}: same facts`)
    t.equal(got.retryAfter, c.err.retryAfter)
    t.equal(got.cause, undefined, `${c.name}: the cause stays in the worker`)
    t.same(storageErrorHttp(got), storageErrorHttp(c.err), `${c.name}: worded the same in the proxy`)
  }
})

t.test('a malformed or unknown typed wire error falls back to a plain error of its code', async (t) => {
  const bad = [
    { code: 'not_found', kind: 'queue_not_found', data: { ref: { project: 1, queue: 'q' } } },
    { code: 'not_found', kind: 'claim_not_found', data: { ref } },
    { code: 'message_claimed', kind: 'message_claimed', data: { ref, messageId: 7 } },
    { code: 'claim_invalid', kind: 'claim_gone', data: { ref, messageId: MID } },
    { code: 'bad_request', kind: 'post_too_large', data: { ref, maxPostBytes: '100' } },
    { code: 'unavailable', kind: 'store_unavailable', data: { reason: 'bored' } },
    { code: 'unavailable', kind: 'store_unavailable', data: { reason: 'unreachable', operation: 'constructor' } },
    { code: 'bad_request', kind: 'bad_store_config', data: {} },
    { code: 'not_found', kind: 'no_such_kind', data: { ref } },
    { code: 'not_found', kind: 'queue_not_found' },
    { code: 'unavailable', kind: 'queue_moved', data: { ref, fence: { token: 't', to: 'b', state: 'gone' } } },
    { code: 'unavailable', kind: 'queue_moved', data: { ref } },
    { code: 'conflict', kind: 'fence_conflict', data: { ref, current: { token: 1, to: 'b', state: 'moved' } } },
  ]
  for (const w of bad) {
    const e = errorFromWire(w)
    t.notOk(e instanceof StorageError, JSON.stringify(w))
    t.equal(e.code, w.code)
  }
  const plain = errorFromWire({ code: 'conflict', description: 'taken' })
  t.match(plain, { code: 'conflict', description: 'taken' })
  t.notOk(plain instanceof StorageError)
})
