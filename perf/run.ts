#!/usr/bin/env node
/**
 * The load runner on its own, against a running Missive (or any Zaqar v2 endpoint):
 *
 *   node dist/perf/run.js --url http://127.0.0.1:8888 --scenario mixed --duration 10
 *   node dist/perf/run.js --scenario producers --batch 10 --rate 10000      # open loop
 *
 * Prints one JSON result (see LoadResult in perf/lib/load.ts) on stdout.
 */
import { helpText, parseArgs, UsageError, type FlagSpec } from './lib/args.js'
import { runLoad, type LoadOptions } from './lib/load.js'

export const RUN_FLAGS: FlagSpec[] = [
  { name: 'url', type: 'string', default: 'http://127.0.0.1:8888', help: 'base URL of the service' },
  { name: 'scenario', type: 'string', default: 'producers', help: 'producers | consumers | mixed | observers | hello' },
  { name: 'connections', type: 'number', default: 32, help: 'connections (closed loop: split evenly between producers and consumers in mixed; open loop: pool size)' },
  { name: 'batch', type: 'number', default: 10, help: 'messages per POST' },
  { name: 'claim-limit', type: 'number', default: 10, help: 'messages per claim' },
  { name: 'delete', type: 'string', default: 'bulk', help: 'bulk (DELETE ?ids=) | single (DELETE href?claim_id= per message)' },
  { name: 'size', type: 'number', default: 200, help: 'bytes of JSON per message' },
  { name: 'queues', type: 'number', default: 4, help: 'queues (1 … 10000)' },
  { name: 'tenants', type: 'number', default: 1, help: 'projects the queues are spread over (1 … 100)' },
  { name: 'duration', type: 'number', default: 10, help: 'seconds' },
  { name: 'rate', type: 'number', default: 0, help: 'open loop: messages/s each way, or requests/s for hello (0 = closed loop)' },
  { name: 'prefix', type: 'string', default: 'bench', help: 'queue/project name prefix' },
  { name: 'help', type: 'boolean', default: false, help: 'show this help' },
]

export function loadOptionsFrom(a: Record<string, unknown>): LoadOptions {
  const scenario = String(a.scenario)
  const conns = Number(a.connections)
  const n = { producers: 0, consumers: 0, observers: 0, hello: 0 }
  if (scenario === 'producers') n.producers = conns
  else if (scenario === 'consumers') n.consumers = conns
  else if (scenario === 'observers') n.observers = conns
  else if (scenario === 'hello') n.hello = conns
  else if (scenario === 'mixed') {
    n.producers = Math.max(1, Math.floor(conns / 2))
    n.consumers = Math.max(1, conns - n.producers)
  } else throw new UsageError(`unknown scenario: ${scenario}`)
  if (Number(a.rate) > 0 && scenario === 'observers') {
    throw new UsageError('--rate (open loop) works with producers, consumers, mixed and hello; observers is closed-loop only')
  }
  const del = String(a.delete)
  if (del !== 'bulk' && del !== 'single') throw new UsageError('--delete must be bulk or single')
  const queues = Number(a.queues)
  const tenants = Number(a.tenants)
  if (!(queues >= 1 && queues <= 100_000)) throw new UsageError('--queues must be 1 … 100000')
  if (!(tenants >= 1 && tenants <= queues)) throw new UsageError('--tenants must be 1 … queues')
  return {
    url: String(a.url),
    ...n,
    batch: Number(a.batch),
    claimLimit: Number(a['claim-limit']),
    deleteMode: del,
    size: Number(a.size),
    queues,
    tenants,
    durationS: Number(a.duration),
    rate: Number(a.rate),
    connections: conns,
    prefix: String(a.prefix),
  }
}

async function main(): Promise<void> {
  let a
  try {
    a = parseArgs(process.argv.slice(2), RUN_FLAGS)
    if (a.help) {
      process.stdout.write(`Usage: node dist/perf/run.js [flags]\n\n${helpText(RUN_FLAGS)}\n`)
      return
    }
    const opts = loadOptionsFrom(a)
    const result = await runLoad(opts)
    process.stdout.write(`${JSON.stringify({ options: opts, result }, null, 2)}\n`)
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`run: ${err.message}\n\nUsage: node dist/perf/run.js [flags]\n${helpText(RUN_FLAGS)}\n`)
      process.exit(2)
    }
    throw err
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    process.stderr.write(`run: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  })
}
