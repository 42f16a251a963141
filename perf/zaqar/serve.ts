#!/usr/bin/env node
/**
 * The real Zaqar 15 on its own, as the bench runs it (perf/lib/zaqar-service.ts), for trying the
 * load runner or the zaqarclient against it by hand:
 *
 *   node dist/perf/zaqar/serve.js [--aof everysec|always|no]
 *
 * Prints the URL and serves until Enter (or the end of stdin), then stops gunicorn and its Redis by
 * pid and removes their files; Ctrl-C kills both by pid at once (perf/lib/procs.ts) and leaves
 * the files. docs/benchmarks.md, "Zaqar in the same run".
 */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { helpText, parseArgs, UsageError, type FlagSpec } from '../lib/args.js'
import { killAll } from '../lib/procs.js'
import { startZaqar } from '../lib/zaqar-service.js'

const FLAGS: FlagSpec[] = [
  { name: 'aof', type: 'string', default: 'everysec', help: "Zaqar's Redis persistence: everysec, always or no" },
  { name: 'help', type: 'boolean', default: false, help: 'show this help' },
]

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2), FLAGS)
  if (a.help) {
    process.stdout.write(`Usage: node dist/perf/zaqar/serve.js [flags]\n\n${helpText(FLAGS)}\n`)
    return
  }
  const aof = String(a.aof)
  if (aof !== 'everysec' && aof !== 'always' && aof !== 'no') throw new UsageError('--aof must be everysec, always or no')
  const dir = await mkdtemp(join(os.tmpdir(), 'zaqar-'))
  const z = await startZaqar({ dir, appendfsync: aof === 'no' ? undefined : aof })
  process.stdout.write(`Zaqar ${z.version} on ${z.svc.url} (gunicorn pid ${z.svc.pid}), Redis on ${z.redis.url}, files in ${dir}; Enter stops both\n`)
  await new Promise<void>((resolve) => {
    process.stdin.once('data', () => resolve())
    process.stdin.once('end', () => resolve())
  })
  process.stdin.pause()
  await z.svc.stop()
  await z.redis.stop()
  await rm(dir, { recursive: true, force: true })
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    killAll()
    process.stderr.write(`zaqar-serve: ${err instanceof UsageError ? err.message : ((err as Error)?.stack ?? String(err))}\n`)
    process.exit(err instanceof UsageError ? 2 : 1)
  },
)
