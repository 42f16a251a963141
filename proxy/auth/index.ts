/**
 * Authentication: who a request is, from its `X-Auth-Token`, per `auth.strategy`
 * (docs/auth.md):
 * - `none`: nobody is checked; `X-Project-ID` is trusted as sent (the embedded default);
 * - `keys`: API keys stored hashed in the catalog (proxy/auth/keys.ts, key-store.ts);
 * - `keystone`: tokens validated by Keystone v3 (proxy/auth/keystone.ts).
 * In every strategy the operator's `adminToken` is an admin credential bound to no project.
 *
 * `authenticate` answers synchronously whenever it can (strategy `none`, a cached credential), so
 * the hot path takes no extra async hop; a promise only when the store or Keystone must be asked.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { defaultCatalogUri } from '../../catalog/index.js'
import type { Config } from '../../shared/config.js'
import type { Logger } from '../../shared/log.js'
import { ANONYMOUS, identityOf, OPERATOR, type Identity } from './identity.js'
import { openKeyStore, type KeyRecord, type KeyStore } from './key-store.js'
import { parseKey, secretMatches } from './keys.js'

export type { Identity } from './identity.js'

export type AuthStrategy = Config['auth']['strategy']

export interface Authenticator {
  readonly strategy: AuthStrategy
  /** The identity `token` proves, or null when it proves none (a 401). */
  authenticate(token: string): Identity | null | Promise<Identity | null>
  /** Headers of a 401 (Keystone's `WWW-Authenticate`), when the strategy has any. */
  readonly challenge: [string, string][] | undefined
  /** The API keys (strategy `keys` only), for the admin API. */
  readonly keys: KeyStore | undefined
  /** Forgets what was cached for the key `id` (it was just revoked here). */
  forgetKey(id: string): void
  close(): Promise<void>
}

/** Constant-time comparison of two secrets (hashed first, so lengths leak nothing either). */
export function sameSecret(a: string, b: string): boolean {
  const h = (s: string): Buffer => createHash('sha256').update(s).digest()
  return timingSafeEqual(h(a), h(b))
}

/** True for addresses only this host can reach. */
export function isLoopback(bind: string): boolean {
  const b = bind.toLowerCase()
  return b === 'localhost' || b === '::1' || b === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(b)
}

/** The start-up warning for strategy `none` on a reachable address, or null. */
export function noneWarning(config: Config): string | null {
  if (config.auth.strategy !== 'none') return null
  const exposed = [config.bind, ...(config.adminPort > 0 ? [config.adminBind ?? config.bind] : [])].filter((b) => !isLoopback(b))
  if (exposed.length === 0) return null
  return `auth.strategy is "none" and the proxy listens on ${exposed.join(', ')}: any client reaching it may act as any project (set auth.strategy, docs/auth.md)`
}

/** Strategy `none`: everyone is anonymous; the admin token is checked where admin calls are made. */
class NoAuth implements Authenticator {
  readonly strategy = 'none'
  readonly challenge = undefined
  readonly keys = undefined
  authenticate(): Identity {
    return ANONYMOUS
  }
  forgetKey(): void {}
  async close(): Promise<void> {}
}

/** A bounded cache of validated credentials, each until its own deadline (ms since the epoch). */
export class CredentialCache<K = string> {
  readonly #max: number
  readonly #map = new Map<string, { identity: Identity | null; until: number; tag: K }>()

  constructor(max: number) {
    this.#max = max
  }

  /** The cached identity; null: cached as invalid; undefined: not cached (or lapsed). */
  get(token: string, now: number): Identity | null | undefined {
    const e = this.#map.get(token)
    if (e === undefined) return undefined
    if (e.until > now) return e.identity
    this.#map.delete(token)
    return undefined
  }

  set(token: string, identity: Identity | null, until: number, tag: K): void {
    this.#map.delete(token)
    // Full: drop the oldest entry (Map keeps insertion order), so memory stays bounded whatever
    // clients send.
    if (this.#map.size >= this.#max) this.#map.delete(this.#map.keys().next().value!)
    this.#map.set(token, { identity, until, tag })
  }

  /** Drops every entry whose tag is `tag`. */
  forget(tag: K): void {
    for (const [k, e] of this.#map) if (e.tag === tag) this.#map.delete(k)
  }

  clear(): void {
    this.#map.clear()
  }

  get size(): number {
    return this.#map.size
  }
}

/**
 * Strategy `keys`. A valid key is cached for `auth.keyCacheMs`: a key revoked on another proxy is
 * refused here at most that long after (at once on the proxy that revoked it).
 */
class KeyAuth implements Authenticator {
  readonly strategy = 'keys'
  readonly challenge = undefined
  readonly keys: KeyStore
  readonly #adminToken: string | undefined
  readonly #cacheMs: number
  readonly #cache: CredentialCache

  constructor(store: KeyStore, config: Config) {
    this.keys = store
    this.#adminToken = config.adminToken === '' ? undefined : config.adminToken
    this.#cacheMs = config.auth.keyCacheMs
    this.#cache = new CredentialCache(config.auth.cacheEntries)
  }

  authenticate(token: string): Identity | null | Promise<Identity | null> {
    if (token === '') return null
    const now = Date.now()
    const hit = this.#cache.get(token, now)
    if (hit !== undefined) return hit
    const parts = parseKey(token)
    if (parts === null) return this.#adminToken !== undefined && sameSecret(token, this.#adminToken) ? OPERATOR : null
    return this.keys.get(parts.id).then((rec) => this.#check(token, parts.secret, rec))
  }

  #check(token: string, secret: string, rec: KeyRecord | null): Identity | null {
    const now = Date.now()
    if (rec === null || !secretMatches(secret, rec.hash)) return null
    if (rec.expires !== null && rec.expires <= now) return null
    const identity = identityOf(rec.project, rec.roles)
    if (this.#cacheMs > 0) this.#cache.set(token, identity, Math.min(now + this.#cacheMs, rec.expires ?? Infinity), rec.id)
    return identity
  }

  forgetKey(id: string): void {
    this.#cache.forget(id)
  }

  async close(): Promise<void> {
    await this.keys.close()
  }
}

export interface AuthOptions {
  /** The catalog the keys live in; default: the config's catalog or the embedded one. */
  catalogUri?: string
  log?: Logger
}

/** The authenticator `config.auth` asks for (warns when `none` listens beyond loopback). */
export async function createAuthenticator(config: Config, opts: AuthOptions = {}): Promise<Authenticator> {
  const warning = noneWarning(config)
  if (warning !== null) opts.log?.warn({ bind: config.bind }, warning)
  switch (config.auth.strategy) {
    case 'none':
      return new NoAuth()
    case 'keys': {
      const uri = opts.catalogUri ?? config.catalog ?? defaultCatalogUri(config.dataDir)
      return new KeyAuth(await openKeyStore(uri, config.dataDir), config)
    }
    case 'keystone': {
      const { KeystoneAuth } = await import('./keystone.js')
      return new KeystoneAuth(config, opts.log)
    }
  }
}

/** Strategy `none`, ready at once: what the proxy uses when it is given no authenticator. */
export const NO_AUTH: Authenticator = new NoAuth()
