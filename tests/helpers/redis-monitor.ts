/**
 * Watches every command a Redis server runs (MONITOR) over a plain socket. ioredis's own
 * `monitor()` marks its connection as monitoring only in a promise callback after MONITOR's
 * "+OK", so when "+OK" and the first monitored line arrive in one read, its reply parser takes
 * the line for the answer to a command it never sent ("Command queue state error") and the test
 * fails on a race with whatever else talks to the server. Monitor output is one RESP simple
 * string per command, so a line reader is all it takes.
 */
import { connect } from 'node:net'

export interface RedisMonitor {
  /** Stops watching and closes the socket. */
  close(): void
}

/** Quoted arguments of one MONITOR line: `<time> [<db> <addr>] "cmd" "arg" …` (escapes kept). */
export function monitorArgs(line: string): string[] {
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1] ?? '')
}

/** Resolves once Redis has answered MONITOR, so every later command reaches `onCommand`. */
export function monitorRedis(port: number, onCommand: (args: string[]) => void, host = '127.0.0.1'): Promise<RedisMonitor> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port })
    let buffered = ''
    let started = false
    socket.setEncoding('utf8')
    socket.on('connect', () => socket.write('MONITOR\r\n'))
    socket.on('error', (err) => {
      if (!started) reject(err)
    })
    socket.on('data', (chunk: string) => {
      buffered += chunk
      let end: number
      while ((end = buffered.indexOf('\r\n')) >= 0) {
        const line = buffered.slice(0, end)
        buffered = buffered.slice(end + 2)
        if (!started) {
          if (line !== '+OK') {
            socket.destroy()
            reject(new Error(`MONITOR answered ${line}`))
            return
          }
          started = true
          resolve({ close: () => socket.destroy() })
          continue
        }
        if (line.startsWith('+')) onCommand(monitorArgs(line))
      }
    })
  })
}
