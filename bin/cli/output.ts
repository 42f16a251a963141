/**
 * How commands print results: JSON with `--json` (for scripts: stable, one document), else a
 * table (cli-table3), coloured only on a terminal.
 */
import { createRequire } from 'node:module'
import type CliTable3 from 'cli-table3'
import type { CommandContext } from './command.js'

/** cli-table3, loaded on first use: `missive serve` (which prints no table) must not need it. */
let Table: typeof CliTable3 | undefined
const table = (): typeof CliTable3 => (Table ??= createRequire(import.meta.url)('cli-table3') as typeof CliTable3)

/** A cell: scalars as they are, objects as compact JSON, null/undefined as `-`. */
function cell(v: unknown): string {
  if (v === null || v === undefined) return '-'
  if (typeof v === 'object') return JSON.stringify(v)
  return String(v)
}

/** Prints `data` as JSON (`--json`) or `rows` under `head` as a table. */
export function printResult(ctx: CommandContext, data: unknown, head: string[], rows: unknown[][]): void {
  if (ctx.values.json === true) {
    ctx.stdout.write(`${JSON.stringify(data, null, 2)}\n`)
    return
  }
  const tty = ctx.stdout.isTTY === true
  const Table = table()
  const t = new Table({ head, style: tty ? {} : { head: [], border: [] } })
  for (const r of rows) t.push(r.map(cell))
  ctx.stdout.write(`${t.toString()}\n`)
}

/** Prints one object: JSON with `--json`, else a two-column key/value table. */
export function printObject(ctx: CommandContext, data: Record<string, unknown>): void {
  printResult(
    ctx,
    data,
    ['field', 'value'],
    Object.entries(data).map(([k, v]) => [k, v]),
  )
}

/** A one-line confirmation (`pool p1 added`), or `data` as JSON with `--json`. */
export function printDone(ctx: CommandContext, message: string, data: unknown): void {
  if (ctx.values.json === true) ctx.stdout.write(`${JSON.stringify(data, null, 2)}\n`)
  else ctx.stdout.write(`${message}\n`)
}
