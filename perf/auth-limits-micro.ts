/**
 * Micro-bench of what authentication and rate limits add to each request, in-process and short
 * (no load run): `node dist/perf/auth-limits-micro.js`. Prints ns per call for the hot-path
 * pieces: strategy none, a cached API key, a cached Keystone token, an in-process rate-limit
 * check, and µs per call for a rate-limit check counted in Redis (one script call, sequential).
 * docs/limits.md and docs/auth.md quote its numbers.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createAuthenticator } from '../proxy/auth/index.js'
import { RateLimiter } from '../proxy/limits/index.js'
import { parseConfig } from '../shared/config.js'
import { killAll, startRedis } from './lib/procs.js'

async function time(label: string, n: number, fn: () => unknown): Promise<void> {
  for (let i = 0; i < Math.min(n, 10_000); i++) await fn() // warm up (JIT, caches)
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < n; i++) {
    const r = fn()
    if (r instanceof Promise) await r
  }
  const ns = Number(process.hrtime.bigint() - t0) / n
  console.log(`${label.padEnd(44)} ${ns < 10_000 ? `${ns.toFixed(0)} ns` : `${(ns / 1000).toFixed(1)} µs`} per call`)
}

const dir = mkdtempSync(join(tmpdir(), 'missive-micro-'))
try {
  const none = await createAuthenticator(parseConfig({ dataDir: dir }))
  await time('auth none', 1_000_000, () => none.authenticate(''))

  const keysConfig = parseConfig({ dataDir: dir, auth: { strategy: 'keys', keyCacheMs: 600_000 } })
  const keys = await createAuthenticator(keysConfig)
  const { newKey } = await import('../proxy/auth/keys.js')
  const k = newKey()
  await keys.keys!.put({ id: k.id, hash: k.hash, project: 'p', roles: ['member'], description: '', created: Date.now(), expires: null })
  await keys.authenticate(k.key)
  await time('auth keys, cached key', 1_000_000, () => keys.authenticate(k.key))
  await time('auth keys, uncached (SQLite catalog read + sha256)', 20_000, () => {
    keys.forgetKey(k.id)
    return keys.authenticate(k.key)
  })
  await keys.close()

  const { KeystoneAuth } = await import('../proxy/auth/keystone.js')
  const { CredentialCache } = await import('../proxy/auth/index.js')
  const { identityOf } = await import('../proxy/auth/identity.js')
  // The cached path of strategy keystone is one CredentialCache lookup, as measured here.
  void KeystoneAuth
  const cache = new CredentialCache<undefined>(10_000)
  const token = 'gAAAAAB' + 'x'.repeat(180)
  cache.set(token, identityOf('p', ['member']), Date.now() + 3_600_000, undefined)
  await time('auth keystone, cached token (cache lookup)', 1_000_000, () => cache.get(token, Date.now()))

  const limits = { enabled: true, requestsPerSecond: 1e9, requestBurst: 1e9 }
  const local = (await RateLimiter.open(parseConfig({ dataDir: dir, rateLimits: limits })))!
  await time('rate limit, in-process bucket', 1_000_000, () => local.request('p'))
  await local.close()

  const redis = await startRedis({ dir })
  const shared = (await RateLimiter.open(parseConfig({ dataDir: dir, catalog: `${redis.url}/1`, rateLimits: limits })))!
  await time('rate limit, Redis bucket (sequential)', 5_000, () => shared.request('p'))
  await shared.close()
  await redis.stop()
} finally {
  killAll()
  rmSync(dir, { recursive: true, force: true })
}
