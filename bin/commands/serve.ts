/** `missive serve`: runs a deployment (supervisor → workers → proxy) until SIGTERM or SIGINT. */
import { ConfigError, ENV_VARIABLES, loadConfig } from '../../shared/config.js'
import { BOOL_SPELLINGS } from '../../shared/config-text.js'
import { createLogger } from '../../shared/log.js'
import { loadUws, NoNativeUws } from '../../shared/uws.js'
import { CliError, EXIT, stringOption, type Command } from '../cli/command.js'

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

/** The environment variables the configuration reads, for help texts. */
export const ENV_HELP = `Environment (overrides the config file; booleans: ${BOOL_SPELLINGS}):
${wrap(ENV_VARIABLES, '  ', 98)}`

export const serve: Command = {
  path: ['serve'],
  summary: 'Run Missive: the proxy and its workers, supervised.',
  options: {
    config: { type: 'string', short: 'c', value: '<file>', help: 'JSON config file (same as MISSIVE_CONFIG=<file>).' },
  },
  more: `${ENV_HELP}

Exit codes: 0 stopped, 1 start-up failed, 2 usage or configuration error,
  3 unsupported Node/platform (no native uWebSockets.js binary loads).

Signals: SIGTERM or SIGINT stop the proxy first (in-flight requests finish), then the workers.`,
  async run(ctx) {
    const file = stringOption(ctx.values, 'config')
    if (file !== undefined) process.env.MISSIVE_CONFIG = file
    // Before anything else is loaded or forked: without a native HTTP server there is nothing to run,
    // and the supervisor would only restart a proxy that cannot start.
    try {
      loadUws()
    } catch (err) {
      if (err instanceof NoNativeUws) throw new CliError(EXIT.unsupported, `unsupported platform: ${err.message}`)
      throw err
    }
    // Imported only now: the supervisor's modules load native addons built for one Node ABI.
    const { runSupervisor } = await import('../../supervisor/index.js')
    let config
    try {
      config = loadConfig()
    } catch (err) {
      if (err instanceof ConfigError) throw new CliError(EXIT.usage, `configuration error: ${err.message}`)
      throw err
    }
    const log = createLogger('supervisor', config.logLevel)
    try {
      const supervisor = await runSupervisor(config, log)
      await supervisor.done
      return EXIT.ok
    } catch (err) {
      if (err instanceof ConfigError) throw new CliError(EXIT.usage, `configuration error: ${err.message}`)
      log.fatal({ err }, 'start-up failed')
      throw new CliError(EXIT.failed, `start-up failed: ${(err as Error).message}`)
    }
  },
}
