/**
 * The admin HTTP client every admin command shares: where the admin API is, which token to send,
 * and how its answers map to exit codes (bin/cli/command.ts `EXIT`).
 *
 * The URL: `--url`, else `MISSIVE_URL`, else the configuration's admin listener (`adminBind` and
 * `adminPort` when `adminPort` is set, else `bind` and `port`; a wildcard bind becomes loopback).
 * The token: `MISSIVE_ADMIN_TOKEN`, else the config file's `adminToken` (never a command-line
 * option: arguments are visible to every user of the host in `ps`).
 */
import { randomUUID } from 'node:crypto'
import { ConfigError, loadConfig, type Config } from '../../shared/config.js'
import { CliError, EXIT, stringOption, type CommandContext } from './command.js'

/** The X-Project-ID the CLI sends: the admin API ignores it, but every request must carry one. */
const CLI_PROJECT = 'missive-cli'

/** An admin API answer that was not a success. */
export class AdminHttpError extends CliError {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly description: string,
  ) {
    super(status === 403 ? EXIT.forbidden : status === 404 ? EXIT.notFound : status >= 500 || status < 400 ? EXIT.failed : EXIT.rejected, `${title}: ${description} (HTTP ${status})`)
  }
}

export interface AdminResponse {
  status: number
  headers: Headers
  /** The parsed JSON body; undefined when there was none. */
  body: unknown
}

export class AdminClient {
  readonly #clientId = randomUUID()

  constructor(
    /** Base URL without a trailing slash, e.g. `http://127.0.0.1:8888`. */
    readonly baseUrl: string,
    readonly token: string | undefined,
  ) {}

  /** Sends one request; resolves with 2xx answers, throws `AdminHttpError` for others and `CliError(failed)` when unreachable. */
  async request(method: string, path: string, body?: unknown): Promise<AdminResponse> {
    const headers: Record<string, string> = { 'Client-ID': this.#clientId, 'X-Project-ID': CLI_PROJECT, Accept: 'application/json' }
    if (this.token !== undefined) headers['X-Auth-Token'] = this.token
    if (body !== undefined) headers['Content-Type'] = 'application/json'
    let res: Response
    try {
      res = await fetch(`${this.baseUrl}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
    } catch (err) {
      const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message
      throw new CliError(EXIT.failed, `cannot reach the admin API at ${this.baseUrl}: ${cause}`)
    }
    const text = await res.text()
    let parsed: unknown
    if (text !== '') {
      try {
        parsed = JSON.parse(text)
      } catch {
        parsed = text
      }
    }
    if (res.status < 200 || res.status >= 300) {
      const e = (parsed ?? {}) as { title?: unknown; description?: unknown }
      throw new AdminHttpError(res.status, typeof e.title === 'string' ? e.title : res.statusText, typeof e.description === 'string' ? e.description : text)
    }
    return { status: res.status, headers: res.headers, body: parsed }
  }

  /** GET, resolving with the JSON body. */
  async get<T = unknown>(path: string): Promise<T> {
    return (await this.request('GET', path)).body as T
  }
}

/** The host part of a URL for a bind address: wildcards become loopback, IPv6 gets brackets. */
function hostFor(bind: string): string {
  if (bind === '0.0.0.0' || bind === '') return '127.0.0.1'
  if (bind === '::' || bind === '[::]') return '[::1]'
  return bind.includes(':') && !bind.startsWith('[') ? `[${bind}]` : bind
}

/** The admin API's URL as the configuration describes it. */
export function adminUrlOf(config: Config): string {
  return config.adminPort > 0
    ? `http://${hostFor(config.adminBind ?? config.bind)}:${config.adminPort}`
    : `http://${hostFor(config.bind)}:${config.port}`
}

/** The configuration the CLI reads (`--config`, else `MISSIVE_CONFIG`, then the environment). */
export function cliConfig(ctx: CommandContext): Config {
  const file = stringOption(ctx.values, 'config')
  const env = file === undefined ? ctx.env : { ...ctx.env, MISSIVE_CONFIG: file }
  try {
    return loadConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(EXIT.usage, `configuration error: ${err.message}`)
    throw err
  }
}

/** The admin client for a command's options and environment. */
export function adminClient(ctx: CommandContext): AdminClient {
  const config = cliConfig(ctx)
  const url = stringOption(ctx.values, 'url') ?? (ctx.env.MISSIVE_URL || undefined) ?? adminUrlOf(config)
  if (!/^https?:\/\//.test(url)) throw new CliError(EXIT.usage, `--url must be an http:// or https:// URL, got ${url}`)
  const token = config.adminToken === '' ? undefined : config.adminToken
  return new AdminClient(url.replace(/\/+$/, ''), token)
}
