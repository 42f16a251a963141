/**
 * A spare worker: forked ahead of need, it loads the worker's modules and waits. When the
 * supervisor starts workers for a pool added at run time, it hands the spare the worker's
 * environment (`{type: 'assign', env}` over IPC) and the spare becomes that worker at once —
 * instead of a fresh process paying Node's start-up and module loading (seconds on a busy host)
 * before the pool can serve. Sends `{type: 'spare'}` once it is waiting. Its command line names
 * this file, not worker/main, so nothing mistakes an idle spare for a serving worker.
 */
import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'

const ext = extname(fileURLToPath(import.meta.url)) === '.ts' ? '.ts' : '.js'
const mod = (rel: string): string => new URL(`../${rel}${ext}`, import.meta.url).href

/** Set in a spare's environment: the file then runs as a spare (importing it does nothing). */
export const SPARE_ENV = 'MISSIVE_SPARE_WORKER'

interface Assign {
  type: 'assign'
  env: Record<string, string>
}

const isAssign = (m: unknown): m is Assign => m !== null && typeof m === 'object' && (m as { type?: unknown }).type === 'assign'

async function runSpare(): Promise<void> {
  // An idle spare has nothing to drain: it leaves with its supervisor.
  const leave = (): never => process.exit(0)
  process.on('disconnect', leave)
  process.on('SIGINT', () => {})
  const heavy = ['worker/storage/index', 'worker/rpc-server', 'worker/metrics', 'worker/storage/metered', 'shared/config', 'shared/log']
  await Promise.all(heavy.map((m) => import(mod(m))))
  process.on('message', function onMessage(msg: unknown) {
    if (!isAssign(msg)) return
    process.off('message', onMessage)
    process.off('disconnect', leave)
    Object.assign(process.env, msg.env)
    void import(mod('worker/main'))
  })
  process.send?.({ type: 'spare' })
}

if (process.env[SPARE_ENV] === '1') await runSpare()
