/**
 * `missive pools list|show|add|update|remove`: the pools admin API (docs/pools.md) from the
 * command line. Every call goes through the admin API, so its checks (connection test, unique
 * store, capabilities, the default pool) apply exactly as they do to any other client.
 */
import type { AdminClient } from '../cli/admin-client.js'
import { adminClient } from '../cli/admin-client.js'
import { intOption, stringOption, usageError, type Command, type CommandContext, type OptionSpec, type OptionValues } from '../cli/command.js'
import { printDone, printObject, printResult } from '../cli/output.js'

interface PoolJson {
  name: string
  uri: string
  weight: number
  flavor: string | null
  options?: Record<string, unknown>
}

/** Every item of a Zaqar-style listing (`/v2/pools`, `/v2/flavors`): pages until one comes back empty. */
export async function listAll<T>(client: AdminClient, path: string, key: string): Promise<T[]> {
  const out: T[] = []
  let next: string | undefined = path
  // Each page moves strictly forward (its marker is the last name), so the walk ends.
  while (next !== undefined) {
    const page: Record<string, unknown> = await client.get(next)
    const items = (page[key] ?? []) as T[]
    out.push(...items)
    const links = (page.links ?? []) as { rel: string; href: string }[]
    next = items.length === 0 ? undefined : links.find((l) => l.rel === 'next')?.href
  }
  return out
}

const poolPath = (name: string): string => `/v2/pools/${encodeURIComponent(name)}`

const POOL_FIELDS: Record<string, OptionSpec> = {
  uri: { type: 'string', value: '<uri>', help: 'Storage URI: sqlite:<file> (inside the data directory) or redis://host:port/db.' },
  weight: { type: 'string', value: '<n>', help: 'Relative share of new queues; 0 takes none.' },
  flavor: { type: 'string', value: '<name>', help: 'The flavor the pool belongs to ("" for none).' },
  workers: { type: 'string', value: '<n>', help: 'Worker processes for the pool (options.workers; 0: served inside the proxy).' },
  options: { type: 'string', value: '<json>', help: 'The whole options object, as JSON.' },
}

/** The `options` object the flags describe, merged over `current`; undefined when neither flag was given. */
function optionsFrom(values: OptionValues, current: Record<string, unknown> = {}): Record<string, unknown> | undefined {
  const raw = stringOption(values, 'options')
  const workers = intOption(values, 'workers')
  if (raw === undefined && workers === undefined) return undefined
  let options = current
  if (raw !== undefined) {
    try {
      options = JSON.parse(raw) as Record<string, unknown>
    } catch (err) {
      throw usageError(`--options is not JSON: ${(err as Error).message}`)
    }
    if (options === null || typeof options !== 'object' || Array.isArray(options)) throw usageError('--options must be a JSON object')
  }
  return workers === undefined ? options : { ...options, workers }
}

/** A pool's row in `pools list`. */
const poolRow = (p: PoolJson): unknown[] => [p.name, p.uri, p.weight, p.flavor, p.options?.workers]

export const poolsList: Command = {
  path: ['pools', 'list'],
  summary: 'List every pool (uri passwords masked).',
  admin: true,
  async run(ctx) {
    const pools = await listAll<PoolJson>(adminClient(ctx), '/v2/pools?detailed=true', 'pools')
    printResult(ctx, pools, ['name', 'uri', 'weight', 'flavor', 'workers'], pools.map(poolRow))
  },
}

export const poolsShow: Command = {
  path: ['pools', 'show'],
  summary: 'Show one pool with its options.',
  args: ['name'],
  admin: true,
  async run(ctx) {
    const pool = await adminClient(ctx).get<Record<string, unknown>>(`${poolPath(ctx.args.name!)}?detailed=true`)
    printObject(ctx, pool)
  },
}

/** The document PUT/PATCH send, from the flags. */
function poolDoc(ctx: CommandContext, current?: Record<string, unknown>): Record<string, unknown> {
  const doc: Record<string, unknown> = {}
  const uri = stringOption(ctx.values, 'uri')
  if (uri !== undefined) doc.uri = uri
  const weight = intOption(ctx.values, 'weight')
  if (weight !== undefined) doc.weight = weight
  const flavor = stringOption(ctx.values, 'flavor')
  if (flavor !== undefined) doc.flavor = flavor
  const options = optionsFrom(ctx.values, current)
  if (options !== undefined) doc.options = options
  return doc
}

export const poolsAdd: Command = {
  path: ['pools', 'add'],
  summary: 'Add a pool, or replace one of the same name (the admin API checks it connects).',
  args: ['name'],
  admin: true,
  options: POOL_FIELDS,
  more: '--uri is required; --weight defaults to 1.',
  async run(ctx) {
    const doc = poolDoc(ctx)
    if (doc.uri === undefined) throw usageError('--uri is required')
    doc.weight ??= 1
    const client = adminClient(ctx)
    await client.request('PUT', poolPath(ctx.args.name!), doc)
    const pool = await client.get(`${poolPath(ctx.args.name!)}?detailed=true`)
    printDone(ctx, `pool ${ctx.args.name!} added`, pool)
  },
}

export const poolsUpdate: Command = {
  path: ['pools', 'update'],
  summary: 'Change some of a pool\'s fields; --workers keeps the other options.',
  args: ['name'],
  admin: true,
  options: POOL_FIELDS,
  async run(ctx) {
    const client = adminClient(ctx)
    const path = poolPath(ctx.args.name!)
    const needsCurrent = ctx.values.workers !== undefined && ctx.values.options === undefined
    const current = needsCurrent ? ((await client.get<PoolJson>(`${path}?detailed=true`)).options ?? {}) : undefined
    const doc = poolDoc(ctx, current)
    if (Object.keys(doc).length === 0) throw usageError('nothing to change: give --uri, --weight, --flavor, --workers or --options')
    const pool = (await client.request('PATCH', path, doc)).body
    printDone(ctx, `pool ${ctx.args.name!} updated`, pool)
  },
}

export const poolsRemove: Command = {
  path: ['pools', 'remove'],
  summary: 'Remove a pool (refused while queues are placed on it, and for the default pool).',
  args: ['name'],
  admin: true,
  async run(ctx) {
    const client = adminClient(ctx)
    const path = poolPath(ctx.args.name!)
    // DELETE answers 204 for a missing pool too; an operator who mistyped a name should hear of it.
    await client.get(path)
    await client.request('DELETE', path)
    printDone(ctx, `pool ${ctx.args.name!} removed`, { name: ctx.args.name!, removed: true })
  },
}

export const POOL_COMMANDS: Command[] = [poolsList, poolsShow, poolsAdd, poolsUpdate, poolsRemove]
