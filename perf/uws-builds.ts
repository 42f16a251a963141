#!/usr/bin/env node
/**
 * The hot path on two uWebSockets.js builds, same run, same code, same load engine
 * (docs/benchmarks.md, "uWS builds"): the host's Node and the build it loads (on Debian 12: Node
 * 20 with uWS 20.30) against Node 22 with upstream uWS 20.57 in a Debian 13 root file system
 * (deploy/trixie-chroot.sh), entered with chroot — same kernel, same cores, same loopback, so what
 * differs is Node, uWS and glibc. Each round starts a fresh service per build (embedded SQLite
 * store, defaults otherwise) and runs, in order: the uWS hello-world (the engine's floor), post 1,
 * post 10, claim 10 + bulk delete; the builds alternate (A B A B …) so drift hits both.
 *
 * `--sides host,trixie,trixie-node20` adds a third side that tells Node's part from uWS's: the
 * host's own Node 20 binary run inside the Debian 13 root, on this repository (bind-mounted at the
 * same path, with its node_modules), where it loads upstream uWS 20.57 — Node 20 on both old and
 * this side, so only the uWS build (and glibc) differs.
 *
 * Usage, as root, after `npm run build` and `deploy/trixie-chroot.sh setup`, with no other load
 * running on the machine:
 *   npx tsx perf/uws-builds.ts [--rootfs /var/tmp/trixie] [--duration 8] [--rounds 2]
 *     [--connections 32] [--sides host,trixie[,trixie-node20]] [--out perf/results]
 * Writes <out>/<date>-uws-builds.json and prints a Markdown table. This repository's `dist/` is
 * copied into the root file system first, so both sides run the code just built.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { engineHello } from './lib/ceilings.js'
import { runLoad, standardLoad, type LoadOptions, type LoadResult } from './lib/load.js'
import { awaitHttp, capture, childProcesses, cleanEnv, exited, freePort, ROOT } from './lib/procs.js'

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback
}
const ROOTFS = arg('rootfs', '/var/tmp/trixie')
const DURATION = Number(arg('duration', '8'))
const ROUNDS = Number(arg('rounds', '2'))
const CONNS = Number(arg('connections', '32'))
const OUT = resolve(ROOT, arg('out', 'perf/results'))
const CHROOT_NODE = '/opt/node22/bin/node'
const CHROOT_APP = '/opt/missive'
const SIDES = arg('sides', 'host,trixie').split(',')

const log = (msg: string): void => void process.stderr.write(`[uws-builds ${new Date().toISOString().slice(11, 19)}] ${msg}\n`)

interface Build {
  key: 'host' | 'trixie' | 'trixie-node20'
  /** argv that runs `node <script> <args…>` on this side, with `env`. */
  command(script: string, args: string[], env: Record<string, string>): [string, string[]]
  /** Where this side's copy of the repository's `dist/` is, as this side sees it. */
  dist: string
  /** A data directory: the path this side uses, and where the host finds it. */
  dataDir(name: string): { inside: string; outside: string }
}

const host: Build = {
  key: 'host',
  command: (script, args) => [process.execPath, [script, ...args]],
  dist: join(ROOT, 'dist'),
  dataDir: (name) => ({ inside: join('/tmp', name), outside: join('/tmp', name) }),
}

const trixie: Build = {
  key: 'trixie',
  command: (script, args, env) => [
    'chroot',
    [ROOTFS, '/usr/bin/env', '-i', 'PATH=/opt/node22/bin:/usr/bin:/bin', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), CHROOT_NODE, script, ...args],
  ],
  dist: join(CHROOT_APP, 'dist'),
  dataDir: (name) => ({ inside: join('/tmp', name), outside: join(ROOTFS, 'tmp', name) }),
}

const trixieNode20: Build = {
  key: 'trixie-node20',
  command: (script, args, env) => [
    'chroot',
    [ROOTFS, '/usr/bin/env', '-i', 'PATH=/opt/node20/bin:/usr/bin:/bin', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), '/opt/node20/bin/node', script, ...args],
  ],
  dist: join(ROOT, 'dist'),
  dataDir: (name) => ({ inside: join('/tmp', name), outside: join(ROOTFS, 'tmp', name) }),
}

/** Binds the repository and its node_modules into the root at the same paths; returns the undo. */
function bindRepo(): () => void {
  const paths = [ROOT, realpathSync(join(ROOT, 'node_modules'))]
  mkdirSync(join(ROOTFS, 'opt/node20/bin'), { recursive: true })
  cpSync(process.execPath, join(ROOTFS, 'opt/node20/bin/node'))
  const done: string[] = []
  for (const p of paths) {
    const at = join(ROOTFS, p)
    mkdirSync(at, { recursive: true })
    if (spawnSync('mount', ['--bind', p, at], { stdio: 'inherit' }).status !== 0) throw new Error(`cannot bind ${p} into ${ROOTFS}`)
    done.push(at)
  }
  return () => {
    for (const at of done.reverse()) spawnSync('umount', [at], { stdio: 'inherit' })
  }
}

/** Node's version and the uWS build that loads on a side. */
function describe(b: Build): { node: string; uws: string; glibc: string } {
  const script = `import(${JSON.stringify(join(b.dist, 'shared/uws.js'))}).then((m) => console.log(JSON.stringify({ node: process.version, uws: m.loadUws().build, glibc: process.report.getReport().header.glibcVersionRuntime })))`
  const [cmd, args] = b.command('-e', [script], {})
  const r = spawnSync(cmd, args, { env: cleanEnv(), encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`${b.key}: cannot load uWS: ${r.stderr}`)
  return JSON.parse(r.stdout) as { node: string; uws: string; glibc: string }
}

interface Running {
  child: ChildProcess
  url: string
  output: () => string
  stop(): Promise<void>
}

async function start(b: Build, what: 'missive' | 'hello', round: number): Promise<Running> {
  const port = await freePort()
  const data = b.dataDir(`missive-uws-builds-${b.key}-${round}-${process.pid}`)
  rmSync(data.outside, { recursive: true, force: true })
  mkdirSync(data.outside, { recursive: true })
  const env = { MISSIVE_BIND: '127.0.0.1', MISSIVE_PORT: String(port), MISSIVE_LOG_LEVEL: 'warn', MISSIVE_DATA_DIR: data.inside }
  const [cmd, args] =
    what === 'missive' ? b.command(join(b.dist, 'bin/missive.js'), ['serve'], env) : b.command(join(b.dist, 'perf/uws-hello.js'), [String(port)], env)
  const child = spawn(cmd, args, { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  const output = capture(child)
  const url = `http://127.0.0.1:${port}`
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid!, 'SIGTERM')
      const t = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 20_000)
      await exited(child)
      clearTimeout(t)
    }
    rmSync(data.outside, { recursive: true, force: true })
  }
  const up = await awaitHttp({ child, url }, 30_000)
  if (up !== 'up') {
    await stop()
    throw new Error(`${b.key} ${what} did not start (${up}): ${output().slice(-600)}`)
  }
  return { child, url, output, stop }
}

/** CPU seconds (user + system) of a process and its descendants, from /proc. */
function treeCpu(pid: number): number {
  const tck = 100
  let total = 0
  const stack = [pid]
  while (stack.length > 0) {
    const p = stack.pop()!
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      total += (Number(f[11]) + Number(f[12])) / tck
    } catch {
      continue
    }
    for (const c of childProcesses(p)) stack.push(c.pid)
  }
  return total
}

interface Row {
  build: Build['key']
  round: number
  scenario: string
  reqPerS: number
  msgsPerS: number
  p50: number | null
  p99: number | null
  failures: number
  /** Server CPU milliseconds per request (the whole process tree). */
  cpuMsPerReq: number | null
  /** The machine's 1-minute load average when the scenario ended (other work on the cores). */
  load1: number
}

function load(url: string, over: Partial<LoadOptions>): LoadOptions {
  return standardLoad(url, DURATION, CONNS, over)
}

function row(b: Build, round: number, scenario: string, r: LoadResult, op: string, msgs: number, cpu: number | null): Row {
  const o = r.ops[op]
  const reqs = Object.values(r.ops).reduce((n, x) => n + x.count, 0)
  return {
    build: b.key,
    round,
    scenario,
    reqPerS: r.reqPerS,
    msgsPerS: msgs,
    p50: o?.p50 ?? null,
    p99: o?.p99 ?? null,
    failures: r.failures,
    cpuMsPerReq: cpu === null || reqs === 0 ? null : Math.round((cpu * 1e6) / reqs) / 1000,
    load1: Math.round(loadavg()[0]! * 100) / 100,
  }
}

async function measure(b: Build, round: number): Promise<Row[]> {
  const rows: Row[] = []
  const hello = await start(b, 'hello', round)
  try {
    await engineHello(hello.url, CONNS, 1) // warm-up
    const c0 = treeCpu(hello.child.pid!)
    const r = await engineHello(hello.url, CONNS, DURATION)
    rows.push(row(b, round, 'hello', r, Object.keys(r.ops)[0]!, 0, treeCpu(hello.child.pid!) - c0))
  } finally {
    await hello.stop()
  }
  const svc = await start(b, 'missive', round)
  try {
    await runLoad(load(svc.url, { producers: 8, durationS: 2, prefix: 'warmup' }))
    const scenario = async (name: string, over: Partial<LoadOptions>, op: string, msgs: (r: LoadResult) => number): Promise<void> => {
      const c0 = treeCpu(svc.child.pid!)
      const r = await runLoad(load(svc.url, over))
      rows.push(row(b, round, name, r, op, msgs(r), treeCpu(svc.child.pid!) - c0))
      log(`${b.key} round ${round}: ${name}: ${r.reqPerS} req/s, ${msgs(r)} msgs/s, failures ${r.failures}`)
    }
    await scenario('post1', { producers: CONNS, batch: 1 }, 'post', (r) => r.msgsInPerS)
    await scenario('post10', { producers: CONNS, batch: 10 }, 'post', (r) => r.msgsInPerS)
    // Enough waiting messages that consumers never run dry during the measured window.
    const stock = Math.max(rows[rows.length - 1]!.msgsPerS, 2000) * DURATION * 1.3
    const fill = await runLoad(load(svc.url, { producers: CONNS, batch: 50, durationS: Math.min(DURATION * 2, stock / 50_000 + 1) }))
    log(`${b.key} round ${round}: prefilled ${Math.round(fill.msgsInPerS * fill.seconds)} messages`)
    await scenario('claim10+delete', { consumers: CONNS, claimLimit: 10, deleteMode: 'bulk' }, 'claim', (r) => r.msgsOutPerS)
  } finally {
    await svc.stop()
  }
  return rows
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

async function main(): Promise<void> {
  if (!existsSync(join(ROOT, 'dist/bin/missive.js'))) throw new Error('run "npm run build" first')
  if (!existsSync(join(ROOTFS, CHROOT_NODE.slice(1)))) throw new Error(`${ROOTFS} has no Node 22: run deploy/trixie-chroot.sh setup first`)
  const mounted = spawnSync('sh', [join(ROOT, 'deploy/trixie-chroot.sh'), 'mount'], { env: { ...cleanEnv(), TRIXIE_ROOT: ROOTFS }, stdio: 'inherit' })
  if (mounted.status !== 0) throw new Error('cannot mount /proc, /dev and /sys in the root file system')
  rmSync(join(ROOTFS, CHROOT_APP.slice(1), 'dist'), { recursive: true, force: true })
  cpSync(join(ROOT, 'dist'), join(ROOTFS, CHROOT_APP.slice(1), 'dist'), { recursive: true })

  const builds = [host, trixie, trixieNode20].filter((b) => SIDES.includes(b.key))
  const unbind = builds.includes(trixieNode20) ? bindRepo() : () => {}
  const sides: Record<string, { node: string; uws: string; glibc: string }> = {}
  const rows: Row[] = []
  try {
    for (const b of builds) sides[b.key] = describe(b)
    log(JSON.stringify(sides))
    for (let round = 1; round <= ROUNDS; round++) {
      // Rotate which side goes first, so none always runs on a warmer or cooler machine.
      const order = builds.map((_, i) => builds[(i + round - 1) % builds.length]!)
      for (const b of order) rows.push(...(await measure(b, round)))
    }
  } finally {
    unbind()
  }

  const scenarios = ['hello', 'post1', 'post10', 'claim10+delete']
  const others = builds.filter((b) => b !== host)
  const lines = [
    `| scenario | ${builds.map((b) => `${b.key}: ${sides[b.key]!.node}, ${sides[b.key]!.uws}, glibc ${sides[b.key]!.glibc}`).join(' | ')} | ${others.map((b) => `${b.key}/host`).join(' | ')} |`,
    `|---|${builds.map(() => '---:|').join('')}${others.map(() => '---:|').join('')}`,
  ]
  const pick = (b: Build['key'], s: string): Row[] => rows.filter((r) => r.build === b && r.scenario === s)
  for (const s of scenarios) {
    const val = (r: Row): number => (s === 'hello' || s === 'post1' ? r.reqPerS : r.msgsPerS)
    const unit = s === 'hello' || s === 'post1' ? 'req/s' : 'msgs/s'
    const cell = (b: Build['key']): { text: string; v: number } => {
      const rs = pick(b, s)
      const v = median(rs.map(val))
      const p99 = median(rs.map((r) => r.p99 ?? 0)).toFixed(2)
      const cpu = median(rs.map((r) => r.cpuMsPerReq ?? 0)).toFixed(3)
      return { text: `${Math.round(v).toLocaleString('en')} ${unit} (${rs.map((r) => Math.round(val(r)).toLocaleString('en')).join(' / ')}), p99 ${p99} ms, ${cpu} ms CPU/req`, v }
    }
    const cells = builds.map((b) => cell(b.key))
    const base = cells[0]!.v
    lines.push(`| ${s} | ${cells.map((c) => c.text).join(' | ')} | ${cells.slice(1).map((c) => (c.v / base).toFixed(2)).join(' | ')} |`)
  }
  const md = lines.join('\n')
  process.stdout.write(`${md}\n`)
  mkdirSync(OUT, { recursive: true })
  const file = join(OUT, `${new Date().toISOString().slice(0, 10)}-uws-builds.json`)
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), duration: DURATION, rounds: ROUNDS, connections: CONNS, sides, rows, table: md }, null, 2))
  log(`wrote ${file}`)
}

main().catch((err: unknown) => {
  process.stderr.write(`uws-builds: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
