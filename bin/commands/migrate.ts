/**
 * `missive migrate start|status|cancel|list`, `missive pools drain` and `missive rebalance`: live
 * migrations (docs/migration.md) from the command line, through the admin API. `--wait` follows
 * progress until the work ends: a progress bar on a terminal, one plain line per change (or every
 * ten seconds) otherwise, so logs and pipes stay readable.
 */
import type { AdminClient } from '../cli/admin-client.js'
import { adminClient } from '../cli/admin-client.js'
import { CliError, EXIT, intOption, stringOption, usageError, type Command, type CommandContext, type ExitCode, type OptionSpec } from '../cli/command.js'
import { printDone, printObject, printResult } from '../cli/output.js'
import { listAll } from './pools.js'

/** A migration as the admin API shows it (proxy/api/migrations.ts `migrationJson`). */
interface MigrationJson {
  id: string
  project: string
  queue: string
  from_pool: string
  to_pool: string
  state: string
  origin: string
  messages_copied: number
  remaining: number | null
  messages_per_second: number
  error: string | null
  pause_ms: number | null
  started: string | null
  finished: string | null
}

interface DrainJson {
  pool: string
  draining: boolean
  queues_left: number
  migrating: number
  done: boolean
}

const FINAL = new Set(['done', 'cancelled', 'failed'])
const path = (id: string): string => `/v2/admin/migrations/${encodeURIComponent(id)}`
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

const WAIT: Record<string, OptionSpec> = {
  wait: { type: 'boolean', short: 'w', help: 'Follow progress until it ends (a progress bar on a terminal).' },
  interval: { type: 'string', value: '<ms>', help: 'How often --wait asks for progress (default 1000).' },
}

const RATE: OptionSpec = { type: 'string', value: '<msgs/s>', help: 'Copy rate limit per migration, messages per second (0: unlimited; default: the server\'s migration.rate).' }

/** Writes progress: a redrawn bar on a TTY, else a line when `line` changed or 10 s passed. */
class Progress {
  #last = ''
  #lastAt = 0
  constructor(readonly ctx: CommandContext) {}
  get tty(): boolean {
    return this.ctx.stdout.isTTY === true && this.ctx.values.json !== true
  }
  show(done: number, total: number | null, text: string): void {
    if (this.ctx.values.json === true) return
    if (this.tty) {
      const width = 30
      const frac = total === null || total <= 0 ? 0 : Math.min(1, done / total)
      const filled = Math.round(frac * width)
      const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${total === null ? '  ?' : `${Math.floor(frac * 100)}`.padStart(3)}%`
      this.ctx.stdout.write(`\r\x1b[2K${bar} ${text}`)
      return
    }
    const now = Date.now()
    if (text === this.#last && now - this.#lastAt < 10_000) return
    this.#last = text
    this.#lastAt = now
    this.ctx.stdout.write(`${text}\n`)
  }
  end(): void {
    if (this.tty) this.ctx.stdout.write('\n')
  }
}

const intervalOf = (ctx: CommandContext): number => intOption(ctx.values, 'interval', 50) ?? 1000

function rateOf(ctx: CommandContext): number | undefined {
  const v = stringOption(ctx.values, 'rate')
  if (v === undefined) return undefined
  if (!/^\d+(\.\d+)?$/.test(v)) throw usageError(`--rate must be a number of messages per second, got ${v}`)
  return Number(v)
}

const migrationText = (m: MigrationJson): string =>
  `${m.queue} ${m.from_pool} → ${m.to_pool}: ${m.state}, ${m.messages_copied} copied` +
  `${m.remaining === null ? '' : `, ${m.remaining} left`}, ${m.messages_per_second} msg/s` +
  `${m.pause_ms === null ? '' : `, switch pause ${Math.round(m.pause_ms)} ms`}${m.error === null ? '' : ` (error: ${m.error})`}`

/** Follows one migration until it ends; its final record. Exit code `failed` unless it ended done. */
async function follow(ctx: CommandContext, client: AdminClient, id: string): Promise<MigrationJson> {
  const progress = new Progress(ctx)
  for (;;) {
    const m = await client.get<MigrationJson>(path(id))
    const total = m.remaining === null ? null : m.messages_copied + m.remaining
    progress.show(m.state === 'done' ? 1 : m.messages_copied, m.state === 'done' ? 1 : total, migrationText(m))
    if (FINAL.has(m.state)) {
      progress.end()
      return m
    }
    await sleep(intervalOf(ctx))
  }
}

/** Prints the final record and turns an unsuccessful end into an exit code. */
function finish(ctx: CommandContext, m: MigrationJson): ExitCode {
  printDone(ctx, `migration ${m.id} ${m.state}`, m)
  if (m.state !== 'done') throw new CliError(EXIT.failed, `migration ${m.id} ended ${m.state}${m.error === null ? '' : `: ${m.error}`}`)
  return EXIT.ok
}

export const migrateStart: Command = {
  path: ['migrate', 'start'],
  summary: 'Move a queue to another pool, live (clients keep using it).',
  args: ['project', 'queue', 'to_pool'],
  admin: true,
  options: { rate: RATE, ...WAIT },
  more: 'Prints the migration id; with --wait, follows it and exits 0 once it is done, 1 if it was cancelled or failed.',
  async run(ctx) {
    const client = adminClient(ctx)
    const rate = rateOf(ctx)
    const body = { project: ctx.args.project!, queue: ctx.args.queue!, to_pool: ctx.args.to_pool!, ...(rate !== undefined && { rate }) }
    const m = (await client.request('POST', '/v2/admin/migrations', body)).body as MigrationJson
    if (ctx.values.wait !== true) {
      printDone(ctx, `migration ${m.id} started: ${m.queue} ${m.from_pool} → ${m.to_pool}`, m)
      return
    }
    if (ctx.values.json !== true) ctx.stdout.write(`migration ${m.id} started\n`)
    return finish(ctx, await follow(ctx, client, m.id))
  },
}

export const migrateStatus: Command = {
  path: ['migrate', 'status'],
  summary: 'Show a migration: state, messages copied and left, rate, switch pause, error.',
  args: ['id'],
  admin: true,
  options: WAIT,
  async run(ctx) {
    const client = adminClient(ctx)
    if (ctx.values.wait === true) return finish(ctx, await follow(ctx, client, ctx.args.id!))
    printObject(ctx, await client.get<Record<string, unknown>>(path(ctx.args.id!)))
  },
}

export const migrateCancel: Command = {
  path: ['migrate', 'cancel'],
  summary: 'Cancel a migration before its switch (the queue stays where it was).',
  args: ['id'],
  admin: true,
  options: WAIT,
  more: 'Refused (exit 6) once the switch has begun: migrate the queue back instead.',
  async run(ctx) {
    const client = adminClient(ctx)
    const m = (await client.request('DELETE', path(ctx.args.id!))).body as MigrationJson
    if (ctx.values.wait !== true) {
      printDone(ctx, `migration ${m.id} ${m.state}`, m)
      return
    }
    const end = await follow(ctx, client, m.id)
    printDone(ctx, `migration ${end.id} ${end.state}`, end)
  },
}

export const migrateList: Command = {
  path: ['migrate', 'list'],
  summary: 'List migrations, oldest first (all, or in one state).',
  admin: true,
  options: { state: { type: 'string', value: '<state>', help: 'copying, switching, cleaning, cancelling, done, cancelled or failed.' } },
  async run(ctx) {
    const state = stringOption(ctx.values, 'state')
    const items = await listAll<MigrationJson>(adminClient(ctx), `/v2/admin/migrations?limit=100${state === undefined ? '' : `&state=${encodeURIComponent(state)}`}`, 'migrations')
    printResult(
      ctx,
      items,
      ['id', 'project', 'queue', 'from', 'to', 'state', 'copied', 'left', 'pause ms', 'origin'],
      items.map((m) => [m.id, m.project, m.queue, m.from_pool, m.to_pool, m.state, m.messages_copied, m.remaining, m.pause_ms === null ? null : Math.round(m.pause_ms), m.origin]),
    )
  },
}

export const poolsDrain: Command = {
  path: ['pools', 'drain'],
  summary: 'Move every queue off a pool (its weight becomes 0), spread over the others by weight.',
  args: ['name'],
  admin: true,
  options: {
    'max-concurrent': { type: 'string', value: '<n>', help: 'Queues moved at once (default: the server\'s migration.drainConcurrency).' },
    rate: RATE,
    stop: { type: 'boolean', help: 'Stop the drain (running migrations finish; the weight stays 0).' },
    ...WAIT,
  },
  more: 'With --wait, exits 0 once no queue is left on the pool; it can then be removed (missive pools remove).',
  async run(ctx) {
    const client = adminClient(ctx)
    const p = `/v2/admin/pools/${encodeURIComponent(ctx.args.name!)}/drain`
    if (ctx.values.stop === true) {
      await client.request('DELETE', p)
      printDone(ctx, `drain of ${ctx.args.name!} stopped`, await client.get(p))
      return
    }
    const max = intOption(ctx.values, 'max-concurrent', 1)
    const rate = rateOf(ctx)
    const first = (await client.request('POST', p, { ...(max !== undefined && { max_concurrent: max }), ...(rate !== undefined && { rate }) })).body as DrainJson
    if (ctx.values.wait !== true) {
      printDone(ctx, `drain of ${first.pool} started: ${first.queues_left} queues to move`, first)
      return
    }
    const total = Math.max(1, first.queues_left)
    const progress = new Progress(ctx)
    for (;;) {
      const d = await client.get<DrainJson>(p)
      progress.show(total - d.queues_left, total, `${d.pool}: ${d.queues_left} queues left, ${d.migrating} moving`)
      if (d.done || !d.draining) {
        progress.end()
        printDone(ctx, d.done ? `pool ${d.pool} drained` : `drain of ${d.pool} stopped`, d)
        return d.done ? EXIT.ok : EXIT.failed
      }
      await sleep(intervalOf(ctx))
    }
  },
}

interface RebalanceJson {
  balanced: boolean
  pools: { name: string; flavor: string | null; weight: number; queues: number; share: number; target: number }[]
  started: MigrationJson[]
}

export const rebalance: Command = {
  path: ['rebalance'],
  summary: 'Move queues until each pool holds its weight\'s share of its flavor group, within a tolerance.',
  admin: true,
  options: {
    tolerance: { type: 'string', value: '<fraction>', help: 'How far a share may stray from its target (default 0.1).' },
    'max-concurrent': { type: 'string', value: '<n>', help: 'Queues moved at once per source pool.' },
    rate: RATE,
    ...WAIT,
  },
  more: 'Each call starts one round of moves; with --wait, rounds repeat until the pools are balanced.',
  async run(ctx) {
    const client = adminClient(ctx)
    const tol = stringOption(ctx.values, 'tolerance')
    if (tol !== undefined && !/^0?\.\d+$|^0$/.test(tol)) throw usageError(`--tolerance must be a fraction below 1, got ${tol}`)
    const max = intOption(ctx.values, 'max-concurrent', 1)
    const rate = rateOf(ctx)
    const body = { ...(tol !== undefined && { tolerance: Number(tol) }), ...(max !== undefined && { max_concurrent: max }), ...(rate !== undefined && { rate }) }
    for (;;) {
      const r = (await client.request('POST', '/v2/admin/rebalance', body)).body as RebalanceJson
      if (ctx.values.wait !== true || r.balanced || r.started.length === 0) {
        if (ctx.values.json === true) printDone(ctx, '', r)
        else {
          printResult(ctx, r, ['pool', 'flavor', 'weight', 'queues', 'share', 'target'], r.pools.map((p) => [p.name, p.flavor, p.weight, p.queues, p.share, p.target]))
          ctx.stdout.write(r.balanced ? 'balanced\n' : `${r.started.length} migrations started\n`)
        }
        return
      }
      if (ctx.values.json !== true) ctx.stdout.write(`${r.started.length} migrations started\n`)
      for (const m of r.started) await follow(ctx, client, m.id)
    }
  },
}

export const MIGRATE_COMMANDS: Command[] = [migrateStart, migrateStatus, migrateCancel, migrateList, poolsDrain, rebalance]
