/**
 * `missive config check`: reads the configuration exactly as `serve` would (file, then
 * environment, then defaults), validates it, and says what it resolved to. Exit 0 when valid,
 * 2 when not (every problem listed on stderr). Nothing is started or connected to.
 */
import { availableStoreOf, redactUri, StoreUriError } from '../../shared/storage/registry.js'
import { cliConfig } from '../cli/admin-client.js'
import { CliError, EXIT, stringOption, type Command } from '../cli/command.js'
import { printObject } from '../cli/output.js'

export const configCheck: Command = {
  path: ['config', 'check'],
  summary: 'Validate the configuration (file and environment) as serve would read it, then exit.',
  options: {
    config: { type: 'string', short: 'c', value: '<file>', help: 'JSON config file (same as MISSIVE_CONFIG=<file>).' },
    json: { type: 'boolean', help: 'Print the resolved configuration as JSON (adminToken masked).' },
  },
  more: 'Exit codes: 0 valid, 2 invalid (the problems are printed on stderr).',
  run(ctx) {
    const config = cliConfig(ctx)
    const problems: string[] = []
    // The schema accepts any string for these; a store this build has no driver for would only
    // fail at start-up (defaultPool) or on first use (catalog).
    for (const [key, uri] of [['defaultPool', config.defaultPool], ['catalog', config.catalog]] as const) {
      if (uri === undefined) continue
      try {
        availableStoreOf(uri)
      } catch (err) {
        if (err instanceof StoreUriError) problems.push(`${key}: ${redactUri(uri)}: ${err.reason}`)
        else throw err
      }
    }
    if (config.adminPort > 0 && config.adminPort === config.port) problems.push('adminPort: must differ from port')
    if (config.metricsPort > 0 && config.metricsPort === config.port) problems.push('metricsPort: must differ from port')
    if (problems.length > 0) throw new CliError(EXIT.usage, `configuration error: invalid configuration:\n  ${problems.join('\n  ')}`)
    const shown: Record<string, unknown> = { ...config, defaultPool: redactUri(config.defaultPool) }
    if (config.catalog !== undefined) shown.catalog = redactUri(config.catalog)
    if (config.adminToken !== undefined) shown.adminToken = '***'
    if (ctx.values.json === true) printObject(ctx, shown)
    else ctx.stdout.write(`configuration OK (${stringOption(ctx.values, 'config') ?? (ctx.env.MISSIVE_CONFIG || undefined) ?? 'no file: environment and defaults'})\n`)
  },
}
