/**
 * A TCP relay on a free loopback port in front of a real server, whose answers can be held back
 * (the server's bytes queued, in order, until `release`): a network that delays one direction,
 * for tests of what a client does while it waits for an answer. Closed in teardown.
 */
import { createServer, connect, type Socket } from 'node:net'
import type { Teardown } from './index.js'

export interface TcpRelay {
  port: number
  /** From now on the server's bytes wait in the relay. */
  hold(): void
  /** Delivers what waited, in order, and relays at once again. */
  release(): void
}

export async function startTcpRelay(t: Teardown, targetPort: number): Promise<TcpRelay> {
  let held = false
  // What the server sent while held: data, or null for its end of the stream.
  const waiting: { to: Socket; data: Buffer | null }[] = []
  const sockets = new Set<Socket>()
  const deliver = (to: Socket, data: Buffer | null): void => {
    if (to.destroyed) return
    if (data === null) to.end()
    else to.write(data)
  }
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1')
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
    }
    client.on('data', (d) => upstream.write(d))
    client.on('end', () => upstream.end())
    upstream.on('data', (d: Buffer) => (held ? waiting.push({ to: client, data: d }) : deliver(client, d)))
    upstream.on('end', () => (held ? waiting.push({ to: client, data: null }) : deliver(client, null)))
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
    client.on('close', () => upstream.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  )
  return {
    port: (server.address() as { port: number }).port,
    hold: () => void (held = true),
    release: () => {
      held = false
      for (const { to, data } of waiting.splice(0)) deliver(to, data)
    },
  }
}
