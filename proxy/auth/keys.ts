/**
 * API keys (strategy `keys`): `msv_<id>_<secret>`, where `id` is 16 hex digits (public: it names
 * the key in the admin API and in logs) and `secret` 32 random bytes in base64url (43 characters).
 *
 * Only SHA-256 of the secret is stored. A slow password hash (scrypt, bcrypt) exists to make
 * guessing a low-entropy password expensive; a 256-bit random secret cannot be guessed at any
 * speed, so a slow hash would add nothing but ~50 ms of CPU to every uncached check — which an
 * attacker sending bad keys (never cacheable) could turn into a denial of service.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

const KEY_RE = /^msv_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/

/** A key's parts, or null when the text is not shaped like a key. */
export function parseKey(token: string): { id: string; secret: string } | null {
  if (token.length !== 64) return null
  const m = KEY_RE.exec(token)
  return m === null ? null : { id: m[1]!, secret: m[2]! }
}

/** SHA-256 of a key's secret, hex: what the store keeps. */
export const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex')

/** True when `secret` hashes to `hash` (constant time in the secret). */
export function secretMatches(secret: string, hash: string): boolean {
  const a = Buffer.from(hashSecret(secret), 'hex')
  const b = Buffer.from(hash, 'hex')
  return a.length === b.length && timingSafeEqual(a, b)
}

/** A new key: its id, the full key text (shown once) and the hash to store. */
export function newKey(): { id: string; key: string; hash: string } {
  const id = randomBytes(8).toString('hex')
  const secret = randomBytes(32).toString('base64url')
  return { id, key: `msv_${id}_${secret}`, hash: hashSecret(secret) }
}
