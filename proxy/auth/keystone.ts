/**
 * Strategy `keystone`: `X-Auth-Token` validated by Keystone v3, as keystonemiddleware's
 * auth_token does it (keystonemiddleware/auth_token/__init__.py, `fetch_token`):
 * `GET /v3/auth/tokens?nocatalog` with the service's own token in `X-Auth-Token` and the
 * caller's in `X-Subject-Token`. 200: the token's project and roles; 404 (or 401 for the caller's
 * token): not valid, a 401 here; Keystone unreachable or failing: 503.
 *
 * Validations are cached until the token's `expires_at` or `auth.keystone.cacheSeconds`
 * (keystonemiddleware's `token_cache_time`, default 300), whichever is first, for at most
 * `auth.cacheEntries` tokens; an expired token is refused from its expiry on, cached or not. A
 * token revoked in Keystone is refused once its cache entry lapses — keystonemiddleware's
 * behaviour; lower `cacheSeconds` to shorten that window. Refused tokens are cached as refused for
 * as long (a token never becomes valid again); concurrent checks of one token share one call.
 *
 * The service token (password auth of `username` in `projectName`) is kept until shortly before
 * it expires, and fetched again when Keystone refuses it.
 */
import type { Config } from '../../shared/config.js'
import { MissiveError } from '../../shared/errors.js'
import type { Logger } from '../../shared/log.js'
import { identityOf, OPERATOR, type Identity } from './identity.js'
import { CredentialCache, sameSecret, type Authenticator } from './index.js'

export type KeystoneOptions = NonNullable<Config['auth']['keystone']>

/** What Missive reads of Keystone's token body (identity API v3, "Validate and show information for token"). */
interface TokenBody {
  token?: {
    expires_at?: string
    project?: { id?: string }
    roles?: { name?: string }[]
  }
}

/** A service token is renewed this long before Keystone says it expires. */
const SERVICE_TOKEN_MARGIN_MS = 60_000

const keystoneDown = (cause?: unknown): MissiveError =>
  new MissiveError('unavailable', 'The Keystone service is temporarily unavailable.', { retryAfter: 1, cause })

export class KeystoneAuth implements Authenticator {
  readonly strategy = 'keystone'
  readonly challenge: [string, string][]
  readonly keys = undefined
  readonly #opts: KeystoneOptions
  readonly #v3: string
  readonly #adminToken: string | undefined
  readonly #cache: CredentialCache<undefined>
  readonly #inflight = new Map<string, Promise<Identity | null>>()
  readonly #log: Logger | undefined
  #service: { token: string; until: number } | undefined
  #serviceFetch: Promise<string> | undefined

  constructor(config: Config, log?: Logger) {
    const opts = config.auth.keystone
    if (opts === undefined) throw new Error('auth.strategy "keystone" needs auth.keystone')
    this.#opts = opts
    this.#v3 = opts.url.replace(/\/+$/, '').replace(/\/v3$/, '') + '/v3'
    this.#adminToken = config.adminToken === '' ? undefined : config.adminToken
    this.#cache = new CredentialCache(config.auth.cacheEntries)
    this.#log = log
    this.challenge = [['www-authenticate', `Keystone uri="${opts.wwwAuthenticateUri ?? opts.url}"`]]
  }

  authenticate(token: string): Identity | null | Promise<Identity | null> {
    if (token === '') return null
    const now = Date.now()
    const hit = this.#cache.get(token, now)
    if (hit !== undefined) return hit
    if (this.#adminToken !== undefined && sameSecret(token, this.#adminToken)) return OPERATOR
    let p = this.#inflight.get(token)
    if (p === undefined) {
      p = this.#validate(token).finally(() => this.#inflight.delete(token))
      this.#inflight.set(token, p)
    }
    return p
  }

  async #validate(token: string): Promise<Identity | null> {
    // Keystone tokens are a few hundred bytes; anything huge is not one (and must not be cached).
    if (token.length > 8192) return null
    let res = await this.#ask(token, await this.#serviceToken(false))
    // 401: Keystone refused *our* token (expired, revoked): fetch a new one, once.
    if (res.status === 401) res = await this.#ask(token, await this.#serviceToken(true))
    if (res.status === 404 || res.status === 401) return this.#invalid(token)
    if (res.status !== 200) throw keystoneDown(new Error(`Keystone answered ${res.status} to a token validation`))
    let body: TokenBody
    try {
      body = (await res.json()) as TokenBody
    } catch (err) {
      throw keystoneDown(err)
    }
    const project = body.token?.project?.id
    const expires = Date.parse(body.token?.expires_at ?? '')
    const now = Date.now()
    // Unscoped and system- or domain-scoped tokens name no project: they cannot use queues.
    if (typeof project !== 'string' || project === '' || !(expires > now)) return this.#invalid(token)
    const roles = (body.token?.roles ?? []).map((r) => r.name).filter((n): n is string => typeof n === 'string')
    const identity = identityOf(project, roles)
    if (this.#opts.cacheSeconds > 0) this.#cache.set(token, identity, Math.min(expires, now + this.#opts.cacheSeconds * 1000), undefined)
    return identity
  }

  /**
   * Remembers that `token` proves nothing, for `cacheSeconds`: a token Keystone refused never
   * becomes valid, and a client (or attacker) repeating a bad token must not cost a call to
   * Keystone each time. Keystone being unreachable is a 503, never cached.
   */
  #invalid(token: string): null {
    if (this.#opts.cacheSeconds > 0) this.#cache.set(token, null, Date.now() + this.#opts.cacheSeconds * 1000, undefined)
    return null
  }

  async #ask(subject: string, service: string): Promise<Response> {
    return this.#fetch(`${this.#v3}/auth/tokens?nocatalog`, {
      headers: { 'x-auth-token': service, 'x-subject-token': subject, accept: 'application/json' },
    })
  }

  /**
   * A call to Keystone, retried once when the connection fails before an answer: a kept-alive
   * connection the server closed meanwhile fails the first request sent on it. Both calls made
   * here are safe to repeat (a validation, a service login). A timeout is not retried.
   */
  async #fetch(url: string, init: RequestInit): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fetch(url, { ...init, signal: AbortSignal.timeout(this.#opts.timeoutMs) })
      } catch (err) {
        if (attempt === 0 && !(err instanceof DOMException)) continue
        this.#log?.warn({ err }, 'Keystone unreachable')
        throw keystoneDown(err)
      }
    }
  }

  /** The service's own token, fetched when missing, near expiry, or `renew`. */
  async #serviceToken(renew: boolean): Promise<string> {
    if (!renew && this.#service !== undefined && this.#service.until > Date.now()) return this.#service.token
    this.#serviceFetch ??= this.#login().finally(() => {
      this.#serviceFetch = undefined
    })
    return this.#serviceFetch
  }

  async #login(): Promise<string> {
    const o = this.#opts
    const body = {
      auth: {
        identity: { methods: ['password'], password: { user: { name: o.username, domain: { name: o.userDomainName }, password: o.password } } },
        scope: { project: { name: o.projectName, domain: { name: o.projectDomainName } } },
      },
    }
    const res = await this.#fetch(`${this.#v3}/auth/tokens?nocatalog`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
    })
    const token = res.headers.get('x-subject-token')
    if (res.status !== 201 || token === null) {
      this.#log?.error({ status: res.status }, 'Keystone refused the service credentials (auth.keystone)')
      throw keystoneDown(new Error(`service login answered ${res.status}`))
    }
    const parsed = (await res.json().catch(() => ({}))) as TokenBody
    const expires = Date.parse(parsed.token?.expires_at ?? '')
    const until = Number.isFinite(expires) ? expires - SERVICE_TOKEN_MARGIN_MS : Date.now() + SERVICE_TOKEN_MARGIN_MS
    this.#service = { token, until }
    return token
  }

  forgetKey(): void {}

  async close(): Promise<void> {
    this.#cache.clear()
  }
}
