/**
 * `missive limits show|set|clear <project>`: a project's rate limits and quotas through the
 * limits admin API (docs/limits.md, "Per-project overrides"), so every check of the API applies.
 * `set` changes only the fields given and keeps the rest of the project's override.
 */
import { adminClient } from '../cli/admin-client.js'
import { usageError, type Command, type OptionSpec, type OptionValues } from '../cli/command.js'
import { printDone, printResult } from '../cli/output.js'

/** The override's fields, by option name; `integer` ones are counts, the others may be fractional. */
const FIELDS: Record<string, { field: string; integer: boolean; help: string }> = {
  'requests-per-second': { field: 'requestsPerSecond', integer: false, help: 'Requests per second (0: no limit).' },
  'request-burst': { field: 'requestBurst', integer: false, help: 'Most requests at once (0: one second\'s worth).' },
  'messages-per-second': { field: 'messagesPerSecond', integer: false, help: 'Messages posted per second (0: no limit).' },
  'message-burst': { field: 'messageBurst', integer: false, help: 'Most messages at once (0: one second\'s worth).' },
  'queues-per-project': { field: 'queuesPerProject', integer: true, help: 'Quota: queues of the project (0: none).' },
  'messages-per-queue': { field: 'messagesPerQueue', integer: true, help: 'Quota: unexpired messages per queue (0: none).' },
  'bytes-per-project': { field: 'bytesPerProject', integer: true, help: 'Quota: bytes of stored messages of the project (0: none).' },
}

const OPTIONS: Record<string, OptionSpec> = {
  ...Object.fromEntries(Object.entries(FIELDS).map(([name, f]) => [name, { type: 'string', value: '<n>', help: f.help } satisfies OptionSpec])),
  default: { type: 'string', multiple: true, value: '<option>', help: 'Drop one field from the override (e.g. --default queues-per-project): the configured default applies.' },
}

interface LimitsView {
  project: string
  defaults: Record<string, number>
  override: Record<string, number> | null
  effective: Record<string, number>
}

const path = (project: string): string => `/v2/admin/limits/${encodeURIComponent(project)}`

/** The table of `limits show`: one row per field, default, override and in force. */
function rows(v: LimitsView): unknown[][] {
  return Object.entries(FIELDS).map(([name, f]) => [name, v.defaults[f.field], v.override?.[f.field], v.effective[f.field]])
}

/** The override fields the options give (numbers checked here; the admin API checks the rest). */
function fieldsOf(values: OptionValues): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [name, f] of Object.entries(FIELDS)) {
    const v = values[name]
    if (typeof v !== 'string') continue
    const n = Number(v)
    if (v.trim() === '' || !Number.isFinite(n) || n < 0 || (f.integer && !Number.isInteger(n))) {
      throw usageError(`--${name} must be ${f.integer ? 'an integer' : 'a number'} of at least 0, got ${v}`)
    }
    out[f.field] = n
  }
  return out
}

export const limitsShow: Command = {
  path: ['limits', 'show'],
  summary: "Show a project's rate limits and quotas: defaults, its override, and what is in force.",
  args: ['project'],
  admin: true,
  async run(ctx) {
    const v = await adminClient(ctx).get<LimitsView>(path(ctx.args.project!))
    printResult(ctx, v, ['limit', 'default', 'override', 'in force'], rows(v))
  },
}

export const limitsSet: Command = {
  path: ['limits', 'set'],
  summary: "Override some of a project's rate limits and quotas (other fields keep their override).",
  args: ['project'],
  admin: true,
  options: OPTIONS,
  more: 'Example: missive limits set p1 --queues-per-project 100 --messages-per-queue 100000',
  async run(ctx) {
    const given = fieldsOf(ctx.values)
    const drop = (ctx.values.default as string[] | undefined) ?? []
    for (const name of drop) if (FIELDS[name] === undefined) throw usageError(`--default ${name}: not one of ${Object.keys(FIELDS).join(', ')}`)
    if (Object.keys(given).length === 0 && drop.length === 0) throw usageError('give at least one limit to set (or --default <option>)')
    const client = adminClient(ctx)
    const current = await client.get<LimitsView>(path(ctx.args.project!))
    const override: Record<string, number> = { ...current.override, ...given }
    for (const name of drop) delete override[FIELDS[name]!.field]
    const v = (await client.request('PUT', path(ctx.args.project!), override)).body as LimitsView
    printDone(ctx, `limits of ${v.project} set: ${JSON.stringify(v.override)}`, v)
  },
}

export const limitsClear: Command = {
  path: ['limits', 'clear'],
  summary: "Drop a project's override: the configured defaults apply again.",
  args: ['project'],
  admin: true,
  async run(ctx) {
    await adminClient(ctx).request('DELETE', path(ctx.args.project!))
    printDone(ctx, `limits of ${ctx.args.project!} back to the defaults`, { project: ctx.args.project!, override: null })
  },
}

export const LIMITS_COMMANDS: readonly Command[] = [limitsShow, limitsSet, limitsClear]
