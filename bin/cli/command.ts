/**
 * The shape of a `missive` subcommand, its exit codes, and argument parsing (node's built-in
 * `util.parseArgs`, strict: an unknown option is a usage error, never silently ignored).
 *
 * Adding a command: write `bin/commands/<name>.ts` exporting a `Command` (or several), then add
 * it to the list in `bin/commands/index.ts`. That is all: usage text, `--help`, option parsing,
 * `--json`, the admin client and error-to-exit-code mapping come from here and bin/cli/*.
 */
import { parseArgs } from 'node:util'

/** Exit codes of every `missive` command (docs/cli.md lists them). */
export const EXIT = {
  /** Done. */
  ok: 0,
  /** Failed: the service could not be reached, answered 5xx, or something unexpected happened. */
  failed: 1,
  /** Usage error (unknown command or option, missing argument) or invalid configuration. */
  usage: 2,
  /** `serve` only: no native uWebSockets.js binary loads on this Node and platform. */
  unsupported: 3,
  /** The admin API refused: no admin token, or the wrong one (HTTP 403). */
  forbidden: 4,
  /** The named pool, flavor or queue does not exist (HTTP 404). */
  notFound: 5,
  /** The admin API rejected the request (HTTP 400, 409 or another 4xx): the message says why. */
  rejected: 6,
} as const

export type ExitCode = (typeof EXIT)[keyof typeof EXIT]

/** An error that ends the command with `code` and `message` on stderr. */
export class CliError extends Error {
  constructor(
    readonly code: ExitCode,
    message: string,
  ) {
    super(message)
    this.name = 'CliError'
  }
}

export const usageError = (message: string): CliError => new CliError(EXIT.usage, message)

/** One option: `util.parseArgs`'s description plus its help text. */
export interface OptionSpec {
  type: 'string' | 'boolean'
  short?: string
  multiple?: boolean
  /** Shown in usage, e.g. `<uri>`; strings only. */
  value?: string
  help: string
}

export type OptionValues = Record<string, string | boolean | string[] | undefined>

/** What a command's `run` receives. */
export interface CommandContext {
  /** Parsed options (the command's and, for admin commands, the shared ones). */
  values: OptionValues
  positionals: string[]
  /** The command's positional arguments by the names in `Command.args` (required ones checked). */
  args: Record<string, string | undefined>
  stdout: NodeJS.WriteStream
  stderr: NodeJS.WriteStream
  env: NodeJS.ProcessEnv
}

export interface Command {
  /** The words that select it, e.g. `['pools', 'list']`. */
  path: readonly string[]
  /** One line for the command list. */
  summary: string
  /** Positional arguments in order; a `?` suffix makes one optional (`['name', 'pool?']`). */
  args?: readonly string[]
  options?: Record<string, OptionSpec>
  /** Adds the admin client's options (`--url`, `--config`, `--json`): bin/cli/admin-client.ts. */
  admin?: boolean
  /** Extra help text after the options. */
  more?: string
  /** Resolves with the exit code (0 when it returns nothing); throws `CliError` to fail. */
  run(ctx: CommandContext): Promise<ExitCode | void> | ExitCode | void
}

/** Options every admin command takes. */
export const ADMIN_OPTIONS: Record<string, OptionSpec> = {
  url: { type: 'string', value: '<url>', help: 'Admin API base URL (default: MISSIVE_URL, else from the config: adminPort, or port).' },
  config: { type: 'string', short: 'c', value: '<file>', help: 'Config file for the URL and admin token (same as MISSIVE_CONFIG).' },
  json: { type: 'boolean', help: 'Print JSON instead of a table.' },
}

const HELP: Record<string, OptionSpec> = { help: { type: 'boolean', short: 'h', help: 'Show this help.' } }

/** Every option `cmd` accepts. */
export function optionsOf(cmd: Command): Record<string, OptionSpec> {
  return { ...(cmd.options ?? {}), ...(cmd.admin === true ? ADMIN_OPTIONS : {}), ...HELP }
}

/** `missive pools add <name> [options]` and one line per option. */
export function commandUsage(cmd: Command): string {
  const args = (cmd.args ?? []).map((a) => (a.endsWith('?') ? `[${a.slice(0, -1)}]` : `<${a}>`)).join(' ')
  const lines = [`Usage: missive ${cmd.path.join(' ')}${args === '' ? '' : ` ${args}`} [options]`, '', cmd.summary, '', 'Options:']
  for (const [name, o] of Object.entries(optionsOf(cmd))) {
    const flag = `${o.short === undefined ? '    ' : `-${o.short}, `}--${name}${o.type === 'string' ? ` ${o.value ?? '<value>'}` : ''}`
    lines.push(`  ${flag.padEnd(26)} ${o.help}${o.multiple === true ? ' (repeatable)' : ''}`)
  }
  if (cmd.more !== undefined) lines.push('', cmd.more.trimEnd())
  return `${lines.join('\n')}\n`
}

/** Parses `argv` (the words after the command's path) for `cmd`; `CliError(usage)` when they do not fit. */
export function parseCommandArgs(cmd: Command, argv: string[]): { values: OptionValues; positionals: string[]; args: Record<string, string | undefined> } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {}
  for (const [name, o] of Object.entries(optionsOf(cmd))) {
    options[name] = { type: o.type, ...(o.short === undefined ? {} : { short: o.short }), ...(o.multiple === true ? { multiple: true } : {}) }
  }
  let parsed
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true })
  } catch (err) {
    const e = err as Error & { code?: string }
    const name = /'([^']+)'/.exec(e.message)?.[1]
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && name !== undefined) throw usageError(`unknown option for ${cmd.path.join(' ')}: ${name}`)
    throw usageError(e.message)
  }
  const values = parsed.values as OptionValues
  const positionals = parsed.positionals
  const args: Record<string, string | undefined> = {}
  if (values.help === true) return { values, positionals, args }
  const names = cmd.args ?? []
  if (positionals.length > names.length) throw usageError(`unexpected argument: ${positionals[names.length]}`)
  for (const [i, n] of names.entries()) {
    const optional = n.endsWith('?')
    const name = optional ? n.slice(0, -1) : n
    if (positionals[i] === undefined && !optional) throw usageError(`missing argument <${name}>`)
    args[name] = positionals[i]
  }
  return { values, positionals, args }
}

/** An integer option's value, or undefined when it was not given. */
export function intOption(values: OptionValues, name: string, min = 0): number | undefined {
  const v = values[name]
  if (v === undefined) return undefined
  if (typeof v !== 'string' || !/^\d+$/.test(v) || Number(v) < min) throw usageError(`--${name} must be an integer of at least ${min}, got ${String(v)}`)
  return Number(v)
}

/** A string option's value (the last one when repeated). */
export function stringOption(values: OptionValues, name: string): string | undefined {
  const v = values[name]
  if (Array.isArray(v)) return v[v.length - 1]
  return typeof v === 'string' ? v : undefined
}
