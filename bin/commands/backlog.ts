/**
 * `missive backlog [pool]`: messages waiting per pool (free, of which delayed, claimed, total) and its queue count,
 * from the admin API's per-pool stats (GET /v2/admin/pools/{pool}/stats).
 */
import { adminClient } from '../cli/admin-client.js'
import type { Command } from '../cli/command.js'
import { printResult } from '../cli/output.js'
import { listAll } from './pools.js'

interface PoolStats {
  name: string
  queues: number
  messages: { claimed: number; free: number; delayed: number; total: number; queues_counted: number; complete: boolean }
  storage: { reachable: boolean }
}

export const backlog: Command = {
  path: ['backlog'],
  summary: 'Messages waiting per pool (free, of which delayed, claimed, total) and its queues.',
  args: ['pool?'],
  admin: true,
  more: '"complete: no" means the sums cover only a sample of the pool\'s queues (see docs/pools.md, pool stats).',
  async run(ctx) {
    const client = adminClient(ctx)
    const names = ctx.args.pool !== undefined ? [ctx.args.pool] : (await listAll<{ name: string }>(client, '/v2/pools', 'pools')).map((p) => p.name)
    const stats: PoolStats[] = []
    for (const name of names) stats.push(await client.get<PoolStats>(`/v2/admin/pools/${encodeURIComponent(name)}/stats`))
    printResult(
      ctx,
      stats.map((s) => ({ pool: s.name, queues: s.queues, ...s.messages, reachable: s.storage.reachable })),
      ['pool', 'queues', 'free', 'delayed', 'claimed', 'total', 'complete', 'reachable'],
      stats.map((s) => [s.name, s.queues, s.messages.free, s.messages.delayed, s.messages.claimed, s.messages.total, s.messages.complete ? 'yes' : 'no', s.storage.reachable ? 'yes' : 'no']),
    )
  },
}
