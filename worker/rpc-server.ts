/**
 * The worker's side of the RPC wire: serves one `DataDriver` on a Unix socket to the proxies.
 *
 * Each connection carries many calls at once (multiplexed by request id); replies go out as they
 * complete, coalesced per tick (shared/rpc/frames.ts). Only the operations of the storage
 * contract (the table in shared/storage/operations.ts) can be called, with at most the arguments
 * they declare. A `MissiveError` crosses the wire as its code and text; any other exception is
 * logged here and answered as `internal`, with nothing of its message or stack sent to the proxy.
 */
import { chmod, lstat, unlink } from 'node:fs/promises'
import net from 'node:net'
import type { Logger } from '../shared/log.js'
import { MissiveError, type WireError } from '../shared/errors.js'
import { FrameDecoder, FrameWriter, FrameError, isRequest, type RpcRequest } from '../shared/rpc/frames.js'
import type { DataDriver } from '../shared/storage/contract.js'
import { arityOf, type DriverOperation, type OperationMethod, type OpArgs } from '../shared/storage/operations.js'

/** A running RPC server. */
export interface RpcServer {
  /** Calls currently executing. */
  readonly inFlight: number
  /**
   * Stops accepting connections, answers new calls on open connections with `unavailable`, waits
   * for the calls in flight to finish (at most `drainTimeoutMs`, default unbounded), flushes their
   * replies, then closes every connection and removes the socket file. Idempotent.
   */
  close(drainTimeoutMs?: number): Promise<void>
}

export interface ServeRpcOptions {
  /** Largest frame accepted or sent (default 64 MiB). */
  maxFrameBytes?: number
  /** When the replies of one tick are written (see `FrameWriter`). */
  flush?: 'immediate' | 'microtask'
  /**
   * Operations outside the storage contract served by this process itself (not the driver):
   * `metrics`, for the proxy's aggregated /metrics.
   */
  extraOps?: Record<string, Operation>
}

const DRAINING: WireError = new MissiveError('unavailable', 'The worker is shutting down. Please try again in a few seconds.', {
  retryAfter: 1,
}).toWire()
const INTERNAL: WireError = new MissiveError('internal').toWire()

type Operation = (...args: unknown[]) => Promise<unknown>

/**
 * Serves `driver` on the Unix socket `socketPath` (created with mode 0600). A stale socket file
 * left by a dead process is removed first; a socket some live process still listens on, or a
 * path that is not a socket, is an error.
 */
export async function serveRpc(
  driver: DataDriver,
  socketPath: string,
  log: Logger,
  opts: ServeRpcOptions = {},
): Promise<RpcServer> {
  await removeStaleSocket(socketPath)

  const connections = new Set<net.Socket>()
  let inFlight = 0
  let draining = false
  let idle: (() => void) | null = null

  const settle = (): void => {
    inFlight--
    if (inFlight === 0 && idle !== null) idle()
  }

  const server = net.createServer((socket) => {
    connections.add(socket)
    const writer = new FrameWriter(socket, { maxFrameBytes: opts.maxFrameBytes, flush: opts.flush })

    const reply = (id: number, result: unknown): void => {
      try {
        writer.write({ id, r: result })
      } catch (err) {
        log.error({ err, id }, 'rpc reply could not be encoded')
        writer.write({ id, e: INTERNAL })
      }
    }
    const fail = (id: number, op: string, err: unknown): void => {
      if (err instanceof MissiveError) {
        writer.write({ id, e: err.toWire() })
      } else {
        log.error({ err, op }, 'rpc operation failed')
        writer.write({ id, e: INTERNAL })
      }
    }

    const dispatch = (req: RpcRequest): void => {
      const { id, op, args } = req
      if (draining) {
        writer.write({ id, e: DRAINING })
        return
      }
      const extra = opts.extraOps?.[op]
      if (extra !== undefined) {
        extra().then(
          (r) => reply(id, r),
          (err: unknown) => fail(id, op, err),
        )
        return
      }
      const arity = arityOf(op)
      if (arity === undefined) {
        writer.write({ id, e: new MissiveError('bad_request', `unknown RPC operation "${op}"`).toWire() })
        return
      }
      if (args.length > arity) {
        writer.write({ id, e: new MissiveError('bad_request', `RPC operation "${op}" takes at most ${arity} arguments`).toWire() })
        return
      }
      // No operation of the contract takes a top-level null; nil is how msgpack carries undefined
      // array elements, so it means "argument absent".
      for (let i = 0; i < args.length; i++) if (args[i] === null) args[i] = undefined
      inFlight++
      let p: Promise<unknown>
      try {
        // An operation (it has an arity), with arguments the proxy encoded from a typed call
        // (proxy/rpc-client.ts): the wire is trusted. Called here rather than through `invoke`:
        // a few ns cheaper on this once-per-request path (perf/driver-wrappers.ts).
        p = (driver[op as DriverOperation] as OperationMethod<DriverOperation, DataDriver>).apply(driver, args as OpArgs<DriverOperation>)
      } catch (err) {
        p = Promise.reject(err)
      }
      p.then(
        (r) => {
          settle()
          reply(id, r)
        },
        (err: unknown) => {
          settle()
          fail(id, op, err)
        },
      )
    }

    const decoder = new FrameDecoder(
      (msg) => {
        if (isRequest(msg)) dispatch(msg)
        else log.warn('rpc: ignoring a message that is not a request')
      },
      { maxFrameBytes: opts.maxFrameBytes },
    )

    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk)
      } catch (err) {
        log.error({ err: err instanceof FrameError ? err.message : err }, 'rpc: protocol violation, dropping connection')
        socket.destroy()
      }
    })
    socket.on('error', (err) => log.debug({ err }, 'rpc connection error'))
    socket.on('close', () => connections.delete(socket))
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(socketPath, () => {
      server.off('error', reject)
      resolve()
    })
  })
  server.on('error', (err) => log.error({ err }, 'rpc server error'))
  await chmod(socketPath, 0o600)
  log.info({ socket: socketPath, driver: driver.kind }, 'rpc server listening')

  let closing: Promise<void> | null = null
  const close = async (drainTimeoutMs?: number): Promise<void> => {
    draining = true
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()))
    if (inFlight > 0) {
      let timer: NodeJS.Timeout | undefined
      const drained = new Promise<void>((resolve) => {
        idle = resolve
      })
      const timedOut =
        drainTimeoutMs === undefined
          ? new Promise<void>(() => {})
          : new Promise<void>((resolve) => {
              timer = setTimeout(() => {
                log.warn({ inFlight }, 'rpc drain timed out')
                resolve()
              }, drainTimeoutMs)
            })
      await Promise.race([drained, timedOut])
      clearTimeout(timer)
    }
    // Replies of the last calls are queued for the next flush: let it happen before closing.
    await new Promise<void>((resolve) => setImmediate(resolve))
    for (const socket of connections) socket.end()
    await Promise.race([stopped, new Promise<void>((resolve) => setTimeout(resolve, 1000).unref())])
    for (const socket of connections) socket.destroy()
    await unlink(socketPath).catch(() => {})
  }

  return {
    get inFlight() {
      return inFlight
    },
    close(drainTimeoutMs?: number): Promise<void> {
      closing ??= close(drainTimeoutMs)
      return closing
    },
  }
}

/** Removes a socket file that no process listens on any more. */
async function removeStaleSocket(socketPath: string): Promise<void> {
  let isSocket: boolean
  try {
    isSocket = (await lstat(socketPath)).isSocket()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  if (!isSocket) throw new Error(`${socketPath} exists and is not a socket; refusing to replace it`)
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect(socketPath)
    probe.once('connect', () => {
      probe.destroy()
      resolve(true)
    })
    probe.once('error', () => resolve(false))
  })
  if (live) throw new Error(`another process is already serving ${socketPath}`)
  await unlink(socketPath).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err
  })
}
