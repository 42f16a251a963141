#!/usr/bin/env node
/**
 * Redis's own cost of each driver operation, counted in instructions: redis-server runs under
 * valgrind's callgrind while one caller drives a fixed, sequential workload through the Redis
 * driver of one or more builds, and the instructions Redis executed in each phase are divided by
 * the messages the phase moved.
 *
 * Why instructions: a change to a Lua script that saves 3–5 % of Redis's time is inside the noise
 * of any timed run on a shared 2-core machine (perf/redis-driver.ts rows move ±5 % between two
 * runs of the same build), while callgrind's count for the same build and workload repeats to
 * within 0.1 %. It is not time: a cache miss counts as one instruction, so a change that moves
 * memory around (a new index, a bigger record) must still be timed, and the suite has the last
 * word. Each build's own scripts are measured (a build root's worker/storage/redis/lua).
 *
 *   npm run build && node dist/perf/redis-instructions.js --builds /tmp/base,.
 *
 * Needs `valgrind` (Debian's package). Redis under callgrind runs ~50× slower: the default
 * workload takes ~20 s per build.
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { helpText, parseArgs, UsageError, type FlagSpec } from './lib/args.js'
import { awaitRedis, freePort, hasBinary, stopChild, track } from './lib/procs.js'
import { parseRedisUri } from '../shared/storage/redis-uri.js'
import type { RedisDriver } from '../worker/storage/redis/driver.js'

const FLAGS: FlagSpec[] = [
  { name: 'builds', type: 'list', default: ['.'], help: 'build roots to measure, in order (each has dist/ built and worker/storage/redis/lua)' },
  { name: 'posts', type: 'number', default: 2000, help: 'posts of `--batch` messages (the backlog the other phases use)' },
  { name: 'batch', type: 'number', default: 10, help: "messages per post (1: a post call's fixed cost shows)" },
  { name: 'together', type: 'number', default: 1, help: 'posts issued at once, which the driver coalesces into one script call (as concurrent requests are)' },
  { name: 'meta', type: 'number', default: 0, help: "bytes of metadata the queue is created with (0: none, the queue is created by the first post)" },
  { name: 'project', type: 'string', default: 'cg', help: "the queue's project name (a Keystone project id has 32 characters: every key name grows with it)" },
  { name: 'consumes', type: 'number', default: 1000, help: 'claims of 10, then as many bulk deletes of what each took, by its claim id' },
  { name: 'lists', type: 'number', default: 300, help: 'listings of 10 messages (an observer paging from the front)' },
  { name: 'body', type: 'number', default: 200, help: 'bytes of each message body (JSON)' },
  { name: 'keep', type: 'string', default: '', help: "a folder to keep callgrind's files in (one per build and phase, for callgrind_annotate)" },
  { name: 'help', type: 'boolean', default: false, help: 'show this help' },
]

/**
 * The phases, in the order they run; each is counted on its own. A consumer's claim and its delete
 * are counted apart: every claim of the phase `claim` is deleted in `delete`, in the same order.
 */
const PHASES = ['post', 'claim', 'delete', 'list'] as const
type Phase = (typeof PHASES)[number]

interface Counted {
  build: string
  /** Instructions per message moved (post: posted; claim: claimed; delete: deleted; list: listed). */
  perMessage: Record<Phase, number>
  messages: Record<Phase, number>
}

/** A JSON body of about `bytes` bytes (the bench's shape: perf/lib/zaqar.ts `messagesBody`). */
function body(bytes: number, seq: number): string {
  const base = JSON.stringify({ event: 'bench', seq, pad: '' })
  return JSON.stringify({ event: 'bench', seq, pad: 'x'.repeat(Math.max(0, bytes - base.length)) })
}

/** callgrind_control, synchronously: `-z` (zero the counters) or `--dump=<name>`. */
function control(pid: number, arg: string): void {
  const r = spawnSync('callgrind_control', [arg, String(pid)], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`callgrind_control ${arg} failed: ${r.stderr || r.stdout}`)
}

/** The instructions recorded in the dump file named `name` (callgrind's `summary:` line). */
function dumped(dir: string, name: string): number {
  for (const f of readdirSync(dir)) {
    if (!f.startsWith('cg.out')) continue
    const text = readFileSync(join(dir, f), 'utf8')
    if (!new RegExp(`^desc: Trigger: (?:Client Request: )?(?:dump )?${name}$`, 'm').test(text)) continue
    const m = /^summary: (\d+)/m.exec(text)
    if (m) return Number(m[1])
  }
  throw new Error(`no callgrind dump named ${name} in ${dir}`)
}

async function measure(root: string, o: { posts: number; batch: number; together: number; meta: number; project: string; consumes: number; lists: number; body: number; keep: string }, n: number): Promise<Counted> {
  const { RedisDriver: Driver } = (await import(pathToFileURL(join(root, 'dist/worker/storage/redis/driver.js')).href)) as { RedisDriver: typeof RedisDriver }
  const dir = mkdtempSync(join(tmpdir(), 'missive-cg-'))
  const port = await freePort()
  // No persistence: the AOF's cost is the same for every build that writes the same commands,
  // and the fsync thread would only add noise to the count.
  const child = spawn(
    'valgrind',
    ['--tool=callgrind', `--callgrind-out-file=${join(dir, 'cg.out')}`, 'redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  track(child, false)
  try {
    const up = await awaitRedis(child, port, 60_000)
    if (up !== 'up') throw new Error(`redis-server under valgrind did not start (${up})`)
    const driver = await Driver.open({ ...parseRedisUri(`redis://127.0.0.1:${port}?verify=false`, 'fast'), gcIntervalMs: 0 })
    const ref = { project: o.project, queue: 'q' }
    const clientId = '6f1c3c1e-5a7b-4c1d-9e2f-0a1b2c3d4e5f'
    const opts = { clientId, defaultTtl: 3600, postBytes: 256 * 1024, queuePolicy: true }
    const batch = Array.from({ length: o.batch }, (_, i) => ({ body: body(o.body, i), ttl: 3600 }))
    if (o.meta > 0) await driver.createQueue(ref, { description: 'x'.repeat(o.meta) })
    // Warm-up, not counted: the scripts are loaded (SCRIPT LOAD compiles them) and the queue made.
    await driver.postMessages(ref, batch, opts)
    const c0 = await driver.createClaim(ref, { ttl: 60, grace: 60, limit: 10 })
    if (c0) await driver.deleteMessages(ref, c0.messages.map((m) => m.id), [c0.id])
    await driver.listMessages(ref, { limit: 10, clientId, echo: true, includeClaimed: false })
    const messages: Record<Phase, number> = { post: 0, claim: 0, delete: 0, list: 0 }
    const run = async (phase: Phase, body: () => Promise<void>): Promise<void> => {
      control(child.pid!, '-z')
      await body()
      control(child.pid!, `--dump=${phase}`)
    }
    await run('post', async () => {
      for (let i = 0; i < o.posts; i += o.together) {
        const rs = await Promise.all(Array.from({ length: o.together }, () => driver.postMessages(ref, batch, opts)))
        for (const r of rs) messages.post += r.length
      }
    })
    const claims: { id: string; ids: string[] }[] = []
    await run('claim', async () => {
      for (let i = 0; i < o.consumes; i++) {
        const c = await driver.createClaim(ref, { ttl: 60, grace: 60, limit: 10 })
        if (c === null) break
        claims.push({ id: c.id, ids: c.messages.map((m) => m.id) })
        messages.claim += c.messages.length
      }
    })
    await run('delete', async () => {
      for (const c of claims) {
        await driver.deleteMessages(ref, c.ids, [c.id])
        messages.delete += c.ids.length
      }
    })
    await run('list', async () => {
      for (let i = 0; i < o.lists; i++) messages.list += (await driver.listMessages(ref, { limit: 10, clientId, echo: true, includeClaimed: false })).items.length
    })
    await driver.close()
    const perMessage = Object.fromEntries(PHASES.map((p) => [p, messages[p] > 0 ? dumped(dir, p) / messages[p] : NaN])) as Record<Phase, number>
    return { build: root, perMessage, messages }
  } finally {
    await stopChild(child, 30_000, false)
    if (o.keep !== '') {
      mkdirSync(o.keep, { recursive: true })
      for (const f of readdirSync(dir)) if (f.startsWith('cg.out.')) renameSync(join(dir, f), join(o.keep, `build${n}.${f}`))
    }
    rmSync(dir, { recursive: true, force: true })
  }
}

async function main(): Promise<void> {
  let flags
  try {
    flags = parseArgs(process.argv.slice(2), FLAGS)
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n${helpText(FLAGS)}`)
      process.exit(2)
    }
    throw err
  }
  if (flags.help) {
    process.stdout.write(helpText(FLAGS))
    return
  }
  if (!hasBinary('valgrind') || !hasBinary('callgrind_control', ['-h'])) throw new Error('valgrind is not installed (apt install valgrind)')
  const o = { posts: Number(flags.posts), batch: Number(flags.batch), together: Number(flags.together), meta: Number(flags.meta), project: String(flags.project), consumes: Number(flags.consumes), lists: Number(flags.lists), body: Number(flags.body), keep: String(flags.keep) }
  const results: Counted[] = []
  for (const [n, b] of (flags.builds as string[]).entries()) {
    const root = resolve(b)
    const r = await measure(root, o, n + 1)
    results.push(r)
    const consume = r.perMessage.claim + r.perMessage.delete
    console.log(`${root}: ` + PHASES.map((p) => `${p} ${Math.round(r.perMessage[p]).toLocaleString('en-US')}`).join(', ') + `, claim + delete ${Math.round(consume).toLocaleString('en-US')} instructions of Redis per message (${r.messages.post} posted, ${r.messages.claim} claimed, ${r.messages.list} listed)`)
  }
  if (results.length > 1) {
    const first = results[0]!
    for (const r of results.slice(1)) {
      const pct = (a: number, b: number): string => `${((a / b - 1) * 100).toFixed(1)} %`
      const consume = (x: Counted): number => x.perMessage.claim + x.perMessage.delete
      console.log(`${r.build} vs ${first.build}: ` + PHASES.map((p) => `${p} ${pct(r.perMessage[p], first.perMessage[p])}`).join(', ') + `, claim + delete ${pct(consume(r), consume(first))}`)
    }
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err)
  process.exit(1)
})
