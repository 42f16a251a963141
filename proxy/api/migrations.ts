/**
 * Live migration admin API (Missive's; docs/migration.md): move one queue to another pool, watch
 * and cancel it; drain a pool; rebalance pools by weight. Every call needs the admin token
 * (`requireAdmin`), checked before the body, exactly as for pools.
 *
 * - `POST /v2/admin/migrations` `{"project","queue","to_pool"[,"rate"]}` → 202, Location
 * - `GET /v2/admin/migrations[?state=&limit=&marker=]`, `GET /v2/admin/migrations/{id}`
 * - `DELETE /v2/admin/migrations/{id}` → 202 (cancel; 409 once the switch began)
 * - `POST|GET|DELETE /v2/admin/pools/{pool}/drain` (start, watch, stop a drain)
 * - `POST /v2/admin/rebalance` `{"tolerance","max_concurrent","rate"}`
 *
 * Bad input is a 4xx and starts nothing: the catalog checks placement, pools and the one active
 * migration per queue in the same write that creates it.
 */
import type { Pool } from '../../catalog/contract.js'
import { isMigrationId, MIGRATION_STATES, MigrationError, type Migration, type MigrationState } from '../../catalog/migration-record.js'
import { isPoolName } from '../../catalog/pools.js'
import { invalidBody, MissiveError, notFound } from '../../shared/errors.js'
import { isQueueName } from '../../shared/storage/queue-policy.js'
import { drainOf, drainTargets, type MigrationControl } from '../migration-control.js'
import { empty, json, type Reply } from '../transport.js'
import { pageLimit } from '../validate.js'
import type { ApiRequest } from './context.js'
import { isoSeconds } from './context.js'
import { bodyObject, pyRepr, rejectExtraKeys } from './pools.js'
import { requireAdmin } from './system.js'

const MAX_CONCURRENT = 256

function control(req: ApiRequest): MigrationControl {
  const m = req.control.migrations
  if (m === undefined) throw new MissiveError('unavailable', 'This proxy does not run migrations.', { retryAfter: 1 })
  return m
}

const href = (req: ApiRequest, id: string): string => `${req.profile.prefix}/admin/migrations/${id}`
const iso = (ms: number | null): string | null => (ms === null ? null : isoSeconds(ms))

/** A migration as the API shows it. */
export function migrationJson(req: ApiRequest, m: Migration): Record<string, unknown> {
  const end = m.finished ?? Date.now()
  const seconds = m.started === null ? 0 : Math.max(0.001, (end - m.started) / 1000)
  return {
    id: m.id,
    href: href(req, m.id),
    project: m.project,
    queue: m.queue,
    from_pool: m.from,
    to_pool: m.to,
    state: m.state,
    origin: m.origin,
    messages_copied: m.copied,
    bytes_copied: m.bytes,
    journal_applied: m.journalApplied,
    /** An estimate: the source's count when last taken, less what was copied since. */
    remaining: m.state === 'done' ? 0 : m.sourceCount === null ? null : Math.max(0, m.sourceCount - m.copied),
    rate_limit: m.rate,
    messages_per_second: m.started === null ? 0 : Math.round((m.copied / seconds) * 10) / 10,
    error: m.error,
    created: iso(m.created),
    started: iso(m.started),
    switched: iso(m.switchedAt),
    finished: iso(m.finished),
    pause_ms: m.pauseMs,
    runner: m.leaseOwner,
  }
}

/** Catalog refusals in the API's words: a missing pool is the request's fault (400), the rest 409. */
function refused(err: unknown): never {
  if (err instanceof MigrationError) {
    if (err.reason === 'unknown_pool') throw invalidBody(err.description ?? err.message)
    if (err.reason !== 'not_found') throw new MissiveError('conflict', err.description, { title: 'Unable to migrate' })
  }
  throw err
}

function stringField(doc: Record<string, unknown>, key: string): string {
  if (!Object.hasOwn(doc, key)) throw invalidBody(`'${key}' is a required property`)
  const v = doc[key]
  if (typeof v !== 'string') throw invalidBody(`${pyRepr(v)} is not of type 'string'`)
  return v
}

function rateField(doc: Record<string, unknown>, fallback: number): number {
  if (!Object.hasOwn(doc, 'rate')) return fallback
  const v = doc.rate
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw invalidBody('`rate` must be a number of messages per second, 0 (unlimited) or more.')
  return v
}

function concurrencyField(doc: Record<string, unknown>, fallback: number): number {
  if (!Object.hasOwn(doc, 'max_concurrent')) return fallback
  const v = doc.max_concurrent
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_CONCURRENT) {
    throw invalidBody(`\`max_concurrent\` must be an integer from 1 to ${MAX_CONCURRENT}.`)
  }
  return v
}

/** POST /v2/admin/migrations */
export async function createMigration(req: ApiRequest): Promise<Reply> {
  requireAdmin(req)
  const mc = control(req)
  const doc = bodyObject(req)
  rejectExtraKeys(doc, ['project', 'queue', 'to_pool', 'rate'])
  const project = stringField(doc, 'project')
  const queue = stringField(doc, 'queue')
  const to = stringField(doc, 'to_pool')
  if (project === '' || project.length > 256) throw invalidBody('`project` must be 1 to 256 characters.')
  if (!isQueueName(queue)) throw invalidBody(`${pyRepr(queue)} is not a valid queue name.`)
  if (!isPoolName(to)) throw invalidBody(`${pyRepr(to)} is not a valid pool name.`)
  const rate = rateField(doc, mc.config.rate)
  let m: Migration
  try {
    m = await mc.start({ project, queue }, to, { rate, origin: 'admin' })
  } catch (err) {
    refused(err)
  }
  return json(202, migrationJson(req, m), [['location', href(req, m.id)]])
}

/** GET /v2/admin/migrations[?state=&limit=&marker=] */
export async function listMigrations(req: ApiRequest): Promise<Reply> {
  requireAdmin(req)
  const q = req.query
  const limit = pageLimit(q.int('limit', 20), 100)
  const state = q.get('state')
  if (state !== undefined && !MIGRATION_STATES.includes(state as MigrationState)) {
    throw new MissiveError('invalid_parameter', `state must be one of ${MIGRATION_STATES.join(', ')}.`)
  }
  const marker = q.get('marker')
  if (marker !== undefined && !isMigrationId(marker)) throw new MissiveError('invalid_parameter', 'marker is not a migration id.')
  const items = await req.control.catalog.listMigrations({ limit, ...(marker && { after: marker }), ...(state && { state: state as MigrationState }) })
  const links =
    items.length < limit
      ? []
      : [{ rel: 'next', href: q.nextLink(req.path, items[items.length - 1]!.id, (k) => (k === 'limit' || k === 'state' ? 'string' : undefined)) }]
  return json(200, { migrations: items.map((m) => migrationJson(req, m)), links })
}

async function found(req: ApiRequest): Promise<Migration> {
  const id = req.params.migration!
  const m = isMigrationId(id) ? await req.control.catalog.getMigration(id) : null
  if (m === null) throw notFound(`Migration ${id} does not exist`)
  return m
}

/** GET /v2/admin/migrations/{migration} */
export async function getMigration(req: ApiRequest): Promise<Reply> {
  requireAdmin(req)
  return json(200, migrationJson(req, await found(req)))
}

/** DELETE /v2/admin/migrations/{migration}: cancel (202); 409 from the switch on. */
export async function cancelMigration(req: ApiRequest): Promise<Reply> {
  requireAdmin(req)
  const m = await found(req)
  let after: Migration
  try {
    after = await req.control.catalog.cancelMigration(m.id)
  } catch (err) {
    refused(err)
  }
  req.log.info({ migration: m.id, state: after.state }, 'migration cancel requested')
  control(req).kick()
  return json(202, migrationJson(req, after))
}

async function poolOf(req: ApiRequest): Promise<Pool> {
  const name = req.params.pool!
  const pool = await req.control.catalog.getPool(name)
  if (pool === null) throw notFound(`Pool ${name} does not exist`)
  return pool
}

async function drainJson(req: ApiRequest, pool: Pool): Promise<Record<string, unknown>> {
  const catalog = req.control.catalog
  const drain = drainOf(pool)
  const [queues, migrating] = await Promise.all([catalog.countPlacements(pool.name), catalog.countActiveFrom(pool.name)])
  return {
    pool: pool.name,
    weight: pool.weight,
    draining: drain !== null,
    queues_left: queues,
    migrating,
    done: drain !== null && queues === 0 && migrating === 0,
    max_concurrent: drain?.max_concurrent ?? null,
    rate_limit: drain?.rate ?? null,
    started: drain === null ? null : isoSeconds(drain.started),
  }
}

/**
 * POST /v2/admin/pools/{pool}/drain `{"max_concurrent"?, "rate"?}`: weight 0, then every queue
 * placed on the pool moves to the other pools of its flavor by weight. 409 when no other pool
 * could take them (the last pool of its flavor group, or all others at weight 0).
 */
export async function startDrain(req: ApiRequest): Promise<Reply> {
  requireAdmin(req)
  const mc = control(req)
  const pool = await poolOf(req)
  const doc = req.body === null || req.body.length === 0 ? {} : bodyObject(req)
  rejectExtraKeys(doc, ['max_concurrent', 'rate'])
  const maxConcurrent = concurrencyField(doc, mc.config.drainConcurrency)
  const rate = rateField(doc, mc.config.rate)
  const pools = await req.control.catalog.listPools()
  if (drainTargets(pools, pool).length === 0) {
    const group = pool.flavor === null ? 'without a flavor' : `of flavor ${pool.flavor}`
    throw new MissiveError('conflict', `Pool ${pool.name} cannot be drained: no other pool ${group} has a weight above 0 to take its queues.`, {
      title: 'Unable to drain',
    })
  }
  const started = drainOf(pool)?.started ?? Date.now()
  const next: Pool = { ...pool, weight: 0, options: { ...pool.options, drain: { max_concurrent: maxConcurrent, rate, started } } }
  await req.control.catalog.putPool(next)
  await req.control.refresh()
  req.log.info({ pool: pool.name, maxConcurrent, rate }, 'pool drain started')
  void mc.drainTick().catch((err: unknown) => req.log.warn({ pool: pool.name, err: (err as Error).message }, 'drain: first top-up failed'))
  return json(202, await drainJson(req, next), [['location', `${req.profile.prefix}/admin/pools/${pool.name}/drain`]])
}

/** GET /v2/admin/pools/{pool}/drain: the drain's progress (also for a pool not draining). */
export async function getDrain(req: ApiRequest): Promise<Reply> {
  requireAdmin(req)
  return json(200, await drainJson(req, await poolOf(req)))
}

/** DELETE /v2/admin/pools/{pool}/drain: stops starting migrations (running ones finish; the weight stays 0). */
export async function stopDrain(req: ApiRequest): Promise<Reply> {
  requireAdmin(req)
  const pool = await poolOf(req)
  if (drainOf(pool) !== null) {
    const { drain: _drain, ...options } = pool.options
    await req.control.catalog.putPool({ ...pool, options })
    await req.control.refresh()
    req.log.info({ pool: pool.name }, 'pool drain stopped')
  }
  return empty(204)
}

/**
 * POST /v2/admin/rebalance `{"tolerance"?, "max_concurrent"?, "rate"?}`: within each flavor
 * group, starts moving queues from pools holding more than their weight's share (plus
 * `tolerance`) to pools holding less, at most `max_concurrent` at once per source pool. 202 with
 * the shares and the migrations started; `balanced: true` when nothing needed moving. Call it
 * again (the CLI does) until balanced.
 */
export async function rebalance(req: ApiRequest): Promise<Reply> {
  requireAdmin(req)
  const mc = control(req)
  const doc = req.body === null || req.body.length === 0 ? {} : bodyObject(req)
  rejectExtraKeys(doc, ['tolerance', 'max_concurrent', 'rate'])
  let tolerance = 0.1
  if (Object.hasOwn(doc, 'tolerance')) {
    const v = doc.tolerance
    if (typeof v !== 'number' || !(v >= 0 && v < 1)) throw invalidBody('`tolerance` must be a fraction from 0 to below 1 (default 0.1).')
    tolerance = v
  }
  const maxConcurrent = concurrencyField(doc, mc.config.drainConcurrency)
  const rate = rateField(doc, mc.config.rate)
  const { pools, started, balanced } = await mc.rebalance({ tolerance, maxConcurrent, rate })
  return json(202, {
    balanced,
    tolerance,
    pools: pools.map((p) => ({ ...p, share: Math.round(p.share * 1000) / 1000, target: Math.round(p.target * 1000) / 1000 })),
    started: started.map((m) => migrationJson(req, m)),
  })
}
