/**
 * The ceiling: a uWS hello-world in its own process (`node dist/perf/uws-hello.js <port>`). Prints
 * `listening <port>` once it serves; answers every request with 200 "hello".
 *
 * With a Redis port and a size (`node dist/perf/uws-hello.js <port> <redis-port> <bytes>`) it is
 * the durable floor instead: each request writes one value of `<bytes>` bytes to that Redis (a
 * `SET` on one of 1,024 keys) and is answered once Redis acknowledged it. On a Redis with
 * `appendfsync always` that is the least a server can do to acknowledge a write durably through
 * Redis: the latency the machine, its disk and Redis's fsync-per-turn give, without a queue's work.
 */
import { Redis } from 'ioredis'
import { uWS } from '../proxy/uws.js'

const port = Number(process.argv[2] ?? 0)
const redisPort = process.argv[3] === undefined ? undefined : Number(process.argv[3])
const value = 'x'.repeat(Number(process.argv[4] ?? 0))
const redis = redisPort === undefined ? undefined : new Redis({ host: '127.0.0.1', port: redisPort, maxRetriesPerRequest: 0 })
let n = 0

uWS
  .App()
  .any('/*', (res) => {
    if (redis === undefined) {
      res.end('hello')
      return
    }
    let aborted = false
    res.onAborted(() => {
      aborted = true
    })
    redis.set(`floor:${n++ % 1024}`, value).then(
      () => {
        if (!aborted) res.cork(() => res.end('ok'))
      },
      (err: Error) => {
        if (!aborted) res.cork(() => res.writeStatus('503 Service Unavailable').end(err.message))
      },
    )
  })
  .listen('127.0.0.1', port, (token) => {
    if (!token) {
      process.stderr.write(`uws-hello: cannot listen on ${port}\n`)
      process.exit(1)
    }
    process.stdout.write(`listening ${uWS.us_socket_local_port(token)}\n`)
  })
process.on('SIGTERM', () => process.exit(0))
process.on('disconnect', () => process.exit(0))
