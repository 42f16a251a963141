/**
 * The ceiling: a uWS hello-world in its own process (`node dist/perf/uws-hello.js <port>`). Prints
 * `listening <port>` once it serves; answers every request with 200 "hello".
 */
import { uWS } from '../proxy/uws.js'

const port = Number(process.argv[2] ?? 0)
uWS
  .App()
  .any('/*', (res) => {
    res.end('hello')
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
