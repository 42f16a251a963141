/** `missive queues list`: every project's queues, for operators (GET /v2/admin/queues). */
import { adminClient } from '../cli/admin-client.js'
import { intOption, stringOption, type Command } from '../cli/command.js'
import { printResult } from '../cli/output.js'

interface Entry {
  pool: string
  project: string
  name: string
}

interface Page {
  queues: Entry[]
  links: { rel: string; href: string }[]
}

export const queuesList: Command = {
  path: ['queues', 'list'],
  summary: 'List queues across every project (pool, project, name), one page or --all.',
  admin: true,
  options: {
    pool: { type: 'string', value: '<pool>', help: 'Only the queues placed on this pool.' },
    limit: { type: 'string', value: '<n>', help: 'Queues per page (1 to 1000; default 100).' },
    marker: { type: 'string', value: '<marker>', help: 'Start after this marker (printed after a full page).' },
    all: { type: 'boolean', help: 'Follow every page to the end.' },
  },
  more: 'Without --all, a full page ends with the marker that continues it (on stderr; in the JSON as links).',
  async run(ctx) {
    const client = adminClient(ctx)
    const params = new URLSearchParams()
    const pool = stringOption(ctx.values, 'pool')
    if (pool !== undefined) params.set('pool', pool)
    const limit = intOption(ctx.values, 'limit', 1)
    if (limit !== undefined) params.set('limit', String(limit))
    const marker = stringOption(ctx.values, 'marker')
    if (marker !== undefined) params.set('marker', marker)
    const query = params.size === 0 ? '' : `?${params.toString()}`
    let page = await client.get<Page>(`/v2/admin/queues${query}`)
    const queues = [...page.queues]
    // Every next link moves strictly forward, and a short page has none: the walk ends.
    while (ctx.values.all === true && page.links.length > 0) {
      page = await client.get<Page>(page.links[0]!.href)
      queues.push(...page.queues)
    }
    const next = page.links.find((l) => l.rel === 'next')?.href
    printResult(ctx, { queues, links: page.links }, ['pool', 'project', 'queue'], queues.map((q) => [q.pool, q.project, q.name]))
    if (next !== undefined && ctx.values.json !== true) {
      ctx.stderr.write(`more: --marker ${new URL(next, 'http://x').searchParams.get('marker') ?? ''}\n`)
    }
  },
}

interface TopAnswer {
  by: string
  queues: { pool: string; project: string; name: string; free: number; claimed: number; total: number; oldest_age: number }[]
  as_of: string | null
}

export const queuesTop: Command = {
  path: ['queues', 'top'],
  summary: 'The queues with the most free messages (or the oldest message), from the backlog scan.',
  admin: true,
  options: {
    by: { type: 'string', value: '<backlog|age>', help: 'Rank by free messages (backlog, the default) or oldest message age (age).' },
    limit: { type: 'string', value: '<n>', help: 'How many (1 to 100; default 10).' },
  },
  more: 'The numbers are from the last complete backlog scan (docs/metrics.md, "Backlog per pool"); as_of says when.',
  async run(ctx) {
    const params = new URLSearchParams()
    const by = stringOption(ctx.values, 'by')
    if (by !== undefined) params.set('by', by)
    const limit = intOption(ctx.values, 'limit', 1)
    if (limit !== undefined) params.set('limit', String(limit))
    const top = await adminClient(ctx).get<TopAnswer>(`/v2/admin/queues/top${params.size === 0 ? '' : `?${params.toString()}`}`)
    printResult(
      ctx,
      top,
      ['pool', 'project', 'queue', 'free', 'claimed', 'total', 'oldest age (s)'],
      top.queues.map((q) => [q.pool, q.project, q.name, q.free, q.claimed, q.total, q.oldest_age]),
    )
    if (ctx.values.json !== true) ctx.stderr.write(`as of ${top.as_of ?? 'never (no scan finished yet)'}\n`)
  },
}
