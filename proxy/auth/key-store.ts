/**
 * Where API keys live: in the catalog, so every proxy sharing it sees a key added or revoked on
 * any of them. Its own table (`auth_keys`) in the SQLite catalog file, its own hash
 * (`<prefix>auth:keys`) in a Redis catalog; the catalog's other tables are not touched.
 */
import type Database from 'better-sqlite3'
import type { Redis } from 'ioredis'
import { catalogFile } from '../../catalog/index.js'
import { connectCatalogRedis, parseRedisCatalogUri } from '../../catalog/stores/redis.js'
import { closeRedis } from '../../shared/redis.js'
import { openCatalogDatabase } from '../../catalog/stores/sqlite.js'
import { unavailable } from '../../shared/errors.js'

/** One stored key, without its secret. */
export interface KeyRecord {
  id: string
  /** SHA-256 of the secret, hex (proxy/auth/keys.ts). */
  hash: string
  project: string
  roles: string[]
  description: string
  /** ms since the epoch. */
  created: number
  /** ms since the epoch after which the key is refused; null: never. */
  expires: number | null
}

export interface KeyStore {
  /** The key with this id, or null. */
  get(id: string): Promise<KeyRecord | null>
  put(rec: KeyRecord): Promise<void>
  /** Removes the key; false when there was none. */
  delete(id: string): Promise<boolean>
  /** Up to `limit` keys sorted by id, after `marker` when given. */
  list(limit: number, marker?: string): Promise<KeyRecord[]>
  close(): Promise<void>
}

/** Opens the key store inside the catalog `uri` names (see catalog/index.ts for the forms). */
export async function openKeyStore(uri: string, dataDir: string): Promise<KeyStore> {
  const file = catalogFile(uri, dataDir)
  if (file !== null) return new SqliteKeyStore(file)
  const opts = parseRedisCatalogUri(uri)
  const redis = await connectCatalogRedis(opts)
  return new RedisKeyStore(redis, `${opts.prefix ?? 'missive:catalog:'}auth:keys`)
}

interface Row {
  id: string
  hash: string
  project: string
  roles: string
  description: string
  created: number
  expires: number | null
}

const fromRow = (r: Row): KeyRecord => ({ ...r, roles: JSON.parse(r.roles) as string[] })

/** Keys in the SQLite catalog file, table `auth_keys`. */
export class SqliteKeyStore implements KeyStore {
  readonly #db: Database.Database
  readonly #stmt

  constructor(path: string) {
    const db = openCatalogDatabase(path)
    this.#db = db
    db.exec(`CREATE TABLE IF NOT EXISTS auth_keys (
      id TEXT PRIMARY KEY, hash TEXT NOT NULL, project TEXT NOT NULL, roles TEXT NOT NULL,
      description TEXT NOT NULL, created INTEGER NOT NULL, expires INTEGER
    ) WITHOUT ROWID`)
    const cols = 'id, hash, project, roles, description, created, expires'
    this.#stmt = {
      get: db.prepare<[string], Row>(`SELECT ${cols} FROM auth_keys WHERE id = ?`),
      put: db.prepare<[string, string, string, string, string, number, number | null]>(
        `INSERT OR REPLACE INTO auth_keys (${cols}) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      delete: db.prepare<[string]>('DELETE FROM auth_keys WHERE id = ?'),
      list: db.prepare<[number], Row>(`SELECT ${cols} FROM auth_keys ORDER BY id LIMIT ?`),
      listAfter: db.prepare<[string, number], Row>(`SELECT ${cols} FROM auth_keys WHERE id > ? ORDER BY id LIMIT ?`),
    }
  }

  async get(id: string): Promise<KeyRecord | null> {
    const row = this.#stmt.get.get(id)
    return row === undefined ? null : fromRow(row)
  }

  async put(r: KeyRecord): Promise<void> {
    this.#stmt.put.run(r.id, r.hash, r.project, JSON.stringify(r.roles), r.description, r.created, r.expires)
  }

  async delete(id: string): Promise<boolean> {
    return this.#stmt.delete.run(id).changes > 0
  }

  async list(limit: number, marker?: string): Promise<KeyRecord[]> {
    const rows = marker === undefined ? this.#stmt.list.all(limit) : this.#stmt.listAfter.all(marker, limit)
    return rows.map(fromRow)
  }

  async close(): Promise<void> {
    this.#db.close()
  }
}

/** Keys in a Redis catalog: one hash, field = key id, value = the record as JSON. */
export class RedisKeyStore implements KeyStore {
  readonly #redis: Redis
  readonly #key: string

  constructor(redis: Redis, key: string) {
    this.#redis = redis
    this.#key = key
  }

  async #run<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      throw unavailable('The key store (catalog) cannot be reached.', 1, err)
    }
  }

  async get(id: string): Promise<KeyRecord | null> {
    const v = await this.#run(() => this.#redis.hget(this.#key, id))
    return v === null ? null : (JSON.parse(v) as KeyRecord)
  }

  async put(r: KeyRecord): Promise<void> {
    await this.#run(() => this.#redis.hset(this.#key, r.id, JSON.stringify(r)))
  }

  async delete(id: string): Promise<boolean> {
    return (await this.#run(() => this.#redis.hdel(this.#key, id))) > 0
  }

  async list(limit: number, marker?: string): Promise<KeyRecord[]> {
    // Keys are an operator's handful: listing reads their ids (HKEYS) and one page of records.
    const ids = (await this.#run(() => this.#redis.hkeys(this.#key))).sort().filter((id) => marker === undefined || id > marker).slice(0, limit)
    if (ids.length === 0) return []
    const values = await this.#run(() => this.#redis.hmget(this.#key, ...ids))
    return values.filter((v): v is string => v !== null).map((v) => JSON.parse(v) as KeyRecord)
  }

  async close(): Promise<void> {
    await closeRedis(this.#redis, true)
  }
}
