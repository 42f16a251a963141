#!/usr/bin/env node
/**
 * The `missive` command: `missive <command> [options]`. `serve` runs a deployment; the others
 * are admin tools talking to a running one's admin API (docs/cli.md). The commands live in
 * bin/commands/ (bin/commands/index.ts says how to add one); this file only picks the command
 * from the first words and maps its outcome to an exit code (bin/cli/command.ts `EXIT`).
 */
import { CliError, commandUsage, EXIT, parseCommandArgs, type Command } from './cli/command.js'
import { COMMANDS } from './commands/index.js'
import { ENV_HELP } from './commands/serve.js'
import { missiveVersion } from './commands/version.js'

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.path.join(' ').length)) + 2
  const lines = COMMANDS.map((c) => `  ${c.path.join(' ').padEnd(width)} ${c.summary}`)
  return `Usage: missive <command> [options]

Commands:
${lines.join('\n')}
  ${'help'.padEnd(width)} Show this help (missive <command> --help: a command's options).

Options: --version (the version), -h, --help.

${ENV_HELP}

Exit codes: 0 done, 1 failed (service unreachable, 5xx), 2 usage or configuration error,
  3 unsupported Node/platform (serve), 4 not authorized (admin token), 5 not found,
  6 rejected by the admin API (400, 409). docs/cli.md has the details.
`
}

/** The command whose words start `argv` (the longest match), and the words after them. */
function find(argv: string[]): { cmd: Command; rest: string[] } | undefined {
  let best: Command | undefined
  for (const c of COMMANDS) {
    if (c.path.every((w, i) => argv[i] === w) && (best === undefined || c.path.length > best.path.length)) best = c
  }
  return best === undefined ? undefined : { cmd: best, rest: argv.slice(best.path.length) }
}

async function main(argv: string[]): Promise<number> {
  const [first] = argv
  if (first === undefined) throw new CliError(EXIT.usage, 'a command is required')
  if (first === 'help' || first === '-h' || first === '--help') {
    process.stdout.write(usage())
    return EXIT.ok
  }
  if (first === '--version' || first === '-V') {
    process.stdout.write(`missive ${missiveVersion()}\n`)
    return EXIT.ok
  }
  const found = find(argv)
  if (found === undefined) {
    // `missive pools` alone: name the subcommands of that group.
    const group = COMMANDS.filter((c) => c.path.length > 1 && c.path[0] === first)
    if (group.length > 0) throw new CliError(EXIT.usage, `${first} needs a subcommand: ${group.map((c) => c.path[1]).join(', ')}`)
    throw new CliError(EXIT.usage, `unknown command: ${argv.join(' ')}`)
  }
  const { cmd, rest } = found
  let parsed
  try {
    parsed = parseCommandArgs(cmd, rest)
  } catch (err) {
    if (err instanceof CliError) throw new CliError(err.code, `${err.message}\n\n${commandUsage(cmd)}`)
    throw err
  }
  if (parsed.values.help === true) {
    process.stdout.write(commandUsage(cmd))
    return EXIT.ok
  }
  const code = await cmd.run({ ...parsed, stdout: process.stdout, stderr: process.stderr, env: process.env })
  return code ?? EXIT.ok
}

main(process.argv.slice(2)).then(
  // Exit at once (as serve always has): a stopped supervisor may leave timers behind. Writes to
  // pipes and files are synchronous on Linux, so nothing printed is lost.
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof CliError) {
      process.stderr.write(`missive: ${err.message}\n${err.code === EXIT.usage && !err.message.includes('Usage:') && !err.message.startsWith('configuration') ? `\n${usage()}` : ''}`)
      process.exit(err.code)
    }
    process.stderr.write(`missive: ${(err as Error)?.stack ?? String(err)}\n`)
    process.exit(EXIT.failed)
  },
)
