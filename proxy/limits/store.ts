/**
 * Per-project overrides of rate limits and quotas, in the catalog so every proxy sees them: table
 * `project_limits` in a SQLite catalog, hash `<prefix>limits` in a Redis catalog (the catalog's
 * own tables are not touched).
 */
import type Database from 'better-sqlite3'
import type { Redis } from 'ioredis'
import { catalogFile } from '../../catalog/index.js'
import { connectCatalogRedis, parseRedisCatalogUri } from '../../catalog/stores/redis.js'
import { closeRedis } from '../../shared/redis.js'
import { openCatalogDatabase } from '../../catalog/stores/sqlite.js'
import { unavailable } from '../../shared/errors.js'

/** A project's own limits and quotas; an absent field takes the configured default. 0: no limit. */
export interface ProjectLimits {
  requestsPerSecond?: number
  requestBurst?: number
  messagesPerSecond?: number
  messageBurst?: number
  queuesPerProject?: number
  messagesPerQueue?: number
  bytesPerProject?: number
}

export interface LimitStore {
  get(project: string): Promise<ProjectLimits | null>
  put(project: string, limits: ProjectLimits): Promise<void>
  delete(project: string): Promise<boolean>
  /** The Redis connection of a Redis catalog (where shared buckets are counted), else undefined. */
  readonly redis: Redis | undefined
  readonly prefix: string
  close(): Promise<void>
}

export async function openLimitStore(uri: string, dataDir: string): Promise<LimitStore> {
  const file = catalogFile(uri, dataDir)
  if (file !== null) return new SqliteLimitStore(file)
  const opts = parseRedisCatalogUri(uri)
  const redis = await connectCatalogRedis(opts)
  return new RedisLimitStore(redis, opts.prefix ?? 'missive:catalog:')
}

class SqliteLimitStore implements LimitStore {
  readonly redis = undefined
  readonly prefix = ''
  readonly #db: Database.Database
  readonly #get
  readonly #put
  readonly #delete

  constructor(path: string) {
    const db = openCatalogDatabase(path)
    this.#db = db
    db.exec('CREATE TABLE IF NOT EXISTS project_limits (project TEXT PRIMARY KEY, limits TEXT NOT NULL) WITHOUT ROWID')
    this.#get = db.prepare<[string], { limits: string }>('SELECT limits FROM project_limits WHERE project = ?')
    this.#put = db.prepare<[string, string]>('INSERT OR REPLACE INTO project_limits (project, limits) VALUES (?, ?)')
    this.#delete = db.prepare<[string]>('DELETE FROM project_limits WHERE project = ?')
  }

  async get(project: string): Promise<ProjectLimits | null> {
    const row = this.#get.get(project)
    return row === undefined ? null : (JSON.parse(row.limits) as ProjectLimits)
  }

  async put(project: string, limits: ProjectLimits): Promise<void> {
    this.#put.run(project, JSON.stringify(limits))
  }

  async delete(project: string): Promise<boolean> {
    return this.#delete.run(project).changes > 0
  }

  async close(): Promise<void> {
    this.#db.close()
  }
}

class RedisLimitStore implements LimitStore {
  readonly redis: Redis
  readonly prefix: string
  readonly #key: string

  constructor(redis: Redis, prefix: string) {
    this.redis = redis
    this.prefix = prefix
    this.#key = `${prefix}limits`
  }

  async #run<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      throw unavailable('The catalog (rate limits) cannot be reached.', 1, err)
    }
  }

  async get(project: string): Promise<ProjectLimits | null> {
    const v = await this.#run(() => this.redis.hget(this.#key, project))
    return v === null ? null : (JSON.parse(v) as ProjectLimits)
  }

  async put(project: string, limits: ProjectLimits): Promise<void> {
    await this.#run(() => this.redis.hset(this.#key, project, JSON.stringify(limits)))
  }

  async delete(project: string): Promise<boolean> {
    return (await this.#run(() => this.redis.hdel(this.#key, project))) > 0
  }

  async close(): Promise<void> {
    await closeRedis(this.redis, true)
  }
}
