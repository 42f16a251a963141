#!/usr/bin/env node
/**
 * The `missive` command. `missive serve` runs a deployment (supervisor → workers → proxy) from the
 * configuration in `MISSIVE_CONFIG` (or `--config`) and the environment. Exit codes: 0 after an
 * orderly stop, 1 when start-up fails, 2 for a usage or configuration error, 3 when this Node and
 * platform are not supported (no native uWebSockets.js binary loads).
 */
import { ConfigError, ENV_VARIABLES, loadConfig } from '../shared/config.js'
import { BOOL_SPELLINGS } from '../shared/config-text.js'
import { createLogger } from '../shared/log.js'
import { loadUws, NoNativeUws } from '../shared/uws.js'

/** `words` joined with ', ' in lines of at most `width` characters, each starting with `indent`. */
function wrap(words: readonly string[], indent: string, width: number): string {
  const lines: string[] = []
  let line = indent
  for (const [i, w] of words.entries()) {
    const piece = i < words.length - 1 ? `${w},` : w
    if (line !== indent && line.length + 1 + piece.length > width) {
      lines.push(line)
      line = indent
    }
    line += line === indent ? piece : ` ${piece}`
  }
  lines.push(line)
  return lines.join('\n')
}

const USAGE = `Usage: missive <command> [options]

Commands:
  serve            Run Missive: the proxy and its workers, supervised.
  help             Show this help.

Options for serve:
  -c, --config <file>   JSON config file (same as MISSIVE_CONFIG=<file>).
  -h, --help            Show this help.

Environment (overrides the config file; booleans: ${BOOL_SPELLINGS}):
${wrap(ENV_VARIABLES, '  ', 98)}

Exit codes: 0 stopped, 1 start-up failed, 2 usage or configuration error,
  3 unsupported Node/platform (no native uWebSockets.js binary loads).

Signals: SIGTERM or SIGINT stop the proxy first (in-flight requests finish), then the workers.
`

function usageError(message: string): never {
  process.stderr.write(`missive: ${message}\n\n${USAGE}`)
  process.exit(2)
}

async function serve(args: string[]): Promise<void> {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    if (a === '-h' || a === '--help') {
      process.stdout.write(USAGE)
      process.exit(0)
    } else if (a === '-c' || a === '--config') {
      const file = args[++i]
      if (file === undefined) usageError(`${a} needs a file name`)
      process.env.MISSIVE_CONFIG = file
    } else if (a.startsWith('--config=')) {
      process.env.MISSIVE_CONFIG = a.slice('--config='.length)
    } else {
      usageError(`unknown option for serve: ${a}`)
    }
  }

  // Before anything else is loaded or forked: without a native HTTP server there is nothing to run,
  // and the supervisor would only restart a proxy that cannot start.
  try {
    loadUws()
  } catch (err) {
    if (err instanceof NoNativeUws) {
      process.stderr.write(`missive: unsupported platform: ${err.message}\n`)
      process.exit(3)
    }
    throw err
  }
  // Imported only now: the supervisor's modules load native addons built for one Node ABI.
  const { runSupervisor } = await import('../supervisor/index.js')

  let config
  try {
    config = loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`missive: configuration error: ${err.message}\n`)
      process.exit(2)
    }
    throw err
  }
  const log = createLogger('supervisor', config.logLevel)
  try {
    const supervisor = await runSupervisor(config, log)
    await supervisor.done
    process.exit(0)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`missive: configuration error: ${err.message}\n`)
      process.exit(2)
    }
    log.fatal({ err }, 'start-up failed')
    process.stderr.write(`missive: start-up failed: ${(err as Error).message}\n`)
    process.exit(1)
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv
  switch (command) {
    case 'serve':
      return serve(rest)
    case 'help':
    case '-h':
    case '--help':
      process.stdout.write(USAGE)
      return
    case undefined:
      usageError('a command is required')
    default:
      usageError(`unknown command: ${command}`)
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`missive: ${(err as Error)?.stack ?? String(err)}\n`)
  process.exit(1)
})
