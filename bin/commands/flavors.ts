/** `missive flavors list|show|add|update|remove`: the flavors admin API (docs/pools.md). */
import { adminClient } from '../cli/admin-client.js'
import { usageError, type Command, type CommandContext, type OptionSpec } from '../cli/command.js'
import { printDone, printObject, printResult } from '../cli/output.js'
import { listAll } from './pools.js'

interface FlavorJson {
  name: string
  pool_list: string[]
  capabilities: string[]
}

const flavorPath = (name: string): string => `/v2/flavors/${encodeURIComponent(name)}`

const POOL_OPTION: Record<string, OptionSpec> = {
  pool: { type: 'string', short: 'p', multiple: true, value: '<pool>', help: 'A pool of the flavor; the flavor gets exactly the pools named.' },
}

/** The `--pool` values (each may also be a comma-separated list). */
function poolList(ctx: CommandContext): string[] {
  const v = ctx.values.pool
  const all = (Array.isArray(v) ? v : typeof v === 'string' ? [v] : []).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '')
  if (all.length === 0) throw usageError('give the flavor\'s pools with --pool <name> (repeatable)')
  return all
}

export const flavorsList: Command = {
  path: ['flavors', 'list'],
  summary: 'List every flavor with its pools and capabilities.',
  admin: true,
  async run(ctx) {
    const flavors = await listAll<FlavorJson>(adminClient(ctx), '/v2/flavors?detailed=true', 'flavors')
    printResult(ctx, flavors, ['name', 'pools', 'capabilities'], flavors.map((f) => [f.name, f.pool_list.join(', '), f.capabilities.join(', ')]))
  },
}

export const flavorsShow: Command = {
  path: ['flavors', 'show'],
  summary: 'Show one flavor.',
  args: ['name'],
  admin: true,
  async run(ctx) {
    printObject(ctx, await adminClient(ctx).get<Record<string, unknown>>(flavorPath(ctx.args.name!)))
  },
}

export const flavorsAdd: Command = {
  path: ['flavors', 'add'],
  summary: 'Create a flavor (or replace one) made of the pools named.',
  args: ['name'],
  admin: true,
  options: POOL_OPTION,
  async run(ctx) {
    const client = adminClient(ctx)
    await client.request('PUT', flavorPath(ctx.args.name!), { pool_list: poolList(ctx) })
    printDone(ctx, `flavor ${ctx.args.name!} added`, await client.get(flavorPath(ctx.args.name!)))
  },
}

export const flavorsUpdate: Command = {
  path: ['flavors', 'update'],
  summary: 'Replace a flavor\'s pools.',
  args: ['name'],
  admin: true,
  options: POOL_OPTION,
  async run(ctx) {
    const r = await adminClient(ctx).request('PATCH', flavorPath(ctx.args.name!), { pool_list: poolList(ctx) })
    printDone(ctx, `flavor ${ctx.args.name!} updated`, r.body)
  },
}

export const flavorsRemove: Command = {
  path: ['flavors', 'remove'],
  summary: 'Remove a flavor (its pools stay, with no flavor).',
  args: ['name'],
  admin: true,
  async run(ctx) {
    const client = adminClient(ctx)
    const path = flavorPath(ctx.args.name!)
    await client.get(path)
    await client.request('DELETE', path)
    printDone(ctx, `flavor ${ctx.args.name!} removed`, { name: ctx.args.name!, removed: true })
  },
}

export const FLAVOR_COMMANDS: Command[] = [flavorsList, flavorsShow, flavorsAdd, flavorsUpdate, flavorsRemove]
