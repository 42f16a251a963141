import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import t from 'tap'
import { ConfigError, parseConfig } from '../../shared/config.js'
import { runSupervisor, type Supervisor } from '../../supervisor/index.js'
import { alive, freePort, tempDir, waitFor, type Teardown } from '../helpers/index.js'

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}.ts`, import.meta.url))

function memoryLog() {
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>)
      cb()
    },
  })
  return { log: pino({ level: 'info' }, stream), lines }
}

async function start(t: Teardown, overrides: { workerEntry?: string; workers?: number; env?: Record<string, string> } = {}) {
  const dir = await tempDir(t)
  const port = await freePort()
  const config = parseConfig({ dataDir: join(dir, 'data'), port, workers: overrides.workers ?? 2, logLevel: 'warn', drainTimeoutMs: 2000 })
  const { log, lines } = memoryLog()
  const drainLog = join(dir, 'drain.log')
  process.env.FIXTURE_DRAIN_LOG = drainLog
  Object.assign(process.env, overrides.env)
  let sup: Supervisor | undefined
  t.teardown(async () => {
    await sup?.stop()
  })
  sup = await runSupervisor(config, log, {
    proxyEntry: fixture('proxy'),
    workerEntry: overrides.workerEntry,
    execArgv: ['--import', 'tsx'],
    handleSignals: false,
    backoffMinMs: 50,
    backoffMaxMs: 400,
  })
  return { sup, port, dir, config, lines, drainLog }
}

const ping = (port: number): Promise<number> =>
  fetch(`http://127.0.0.1:${port}/ping`, { signal: AbortSignal.timeout(2000) }).then((r) => r.status)

t.test('starts workers then the proxy, restarts crashed children, stops in order', async (t) => {
  const { sup, port, dir, lines, drainLog } = await start(t)
  t.equal(sup.port, port, 'the proxy reported its port')
  t.same(sup.workerSockets, [join(dir, 'data/run/default-0.sock'), join(dir, 'data/run/default-1.sock')])
  await waitFor(async () => (await ping(port)) === 204, { what: 'proxy reaching both workers' })

  const starts = lines.filter((l) => l.msg === 'child started').map((l) => l.child)
  t.same(starts, ['worker-0', 'worker-1', 'proxy'], 'workers first, proxy once they are ready')
  const catalog = await readFile(join(dir, 'data/catalog.sqlite'))
  t.ok(catalog.length > 0, 'catalog created')
  // The default `semiSpaceMb` (32) reaches every child's command line (supervisor/node-flags.ts).
  for (const pid of [sup.pids().proxy!, ...sup.pids().workers.map((p) => p!)]) {
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')
    t.ok(argv.includes('--max-semi-space-size=32'), `child ${pid} runs with a 32 MB semi-space`)
  }

  // A worker killed with SIGKILL comes back on the same socket; the proxy reconnects.
  const before = sup.pids()
  process.kill(before.workers[0]!, 'SIGKILL')
  await waitFor(() => sup.pids().workers[0] !== undefined && sup.pids().workers[0] !== before.workers[0], { what: 'worker restart' })
  await waitFor(async () => (await ping(port)) === 204, { what: 'proxy reconnecting' })
  t.pass('worker restarted and reachable again')
  const exit = lines.find((l) => l.msg === 'child exited' && l.child === 'worker-0')
  t.match(exit, { signal: 'SIGKILL', code: null }, 'the exit was logged with its signal')
  t.match(lines.find((l) => l.msg === 'restarting child'), { child: 'worker-0', delayMs: 50, restarts: 1 })

  // Back-off doubles on repeated crashes.
  process.kill(sup.pids().workers[0]!, 'SIGKILL')
  await waitFor(() => lines.filter((l) => l.msg === 'restarting child').length === 2)
  t.match(lines.filter((l) => l.msg === 'restarting child')[1], { delayMs: 100, restarts: 2 })
  await waitFor(async () => (await ping(port)) === 204, { what: 'second recovery' })

  // The proxy too.
  const proxyPid = sup.pids().proxy!
  process.kill(proxyPid, 'SIGKILL')
  await waitFor(() => sup.pids().proxy !== undefined && sup.pids().proxy !== proxyPid, { what: 'proxy restart' })
  await waitFor(async () => (await ping(port)) === 204, { what: 'proxy serving again' })

  const pids = sup.pids()
  await sup.stop()
  await sup.done
  t.notOk(alive(pids.proxy!), 'proxy gone')
  for (const pid of pids.workers) t.notOk(alive(pid!), 'worker gone')
  t.equal((await readFile(drainLog, 'utf8')).trim(), 'workers-up', 'workers still served while the proxy drained')
  const exits = lines.filter((l) => l.msg === 'child exited').slice(-3)
  t.equal(exits[0].child, 'proxy', 'the proxy exits first')
  t.ok(exits.every((l) => l.code === 0), 'every child exited 0')
  t.equal(lines.filter((l) => l.msg === 'restarting child').length, 3, 'no restart during shutdown')
})

t.test('a worker that dies before it is ready fails the start-up', async (t) => {
  await t.rejects(start(t, { workerEntry: fixture('exit'), workers: 1, env: { FIXTURE_EXIT_CODE: '1' } }), /worker-0 exited \(code 1/)
  const err = await start(t, { workerEntry: fixture('exit'), workers: 1, env: { FIXTURE_EXIT_CODE: '2' } }).catch((e: unknown) => e)
  t.type(err, ConfigError, 'exit code 2 means the child rejected the configuration')
})
