/**
 * Scrape cost against the number of queues (issue 17: "scrape cost stays bounded with 100,000
 * queues"). Starts `missive serve` (the build) on the embedded SQLite store, creates queues in
 * steps up to `--queues` (default 100,000; each with one message, so every queue counts), and at
 * each step measures: the time of one /metrics scrape (median and max of 20, `metricsCacheMs: 0`
 * so each one collects), the page's size, and how long the background backlog scan takes to
 * finish a pass that sees every queue.
 *
 *   npm run build && npx tsx perf/scrape-cost.ts [--queues 100000] [--steps 1,1000,10000,100000]
 */
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { awaitHttp, freePort, spawnMissive } from './lib/procs.js'

const { values } = parseArgs({ options: { queues: { type: 'string' }, steps: { type: 'string' } } })
const max = Number(values.queues ?? 100_000)
const steps = (values.steps ?? `1,1000,10000,${max}`).split(',').map(Number).filter((n) => n > 0 && n <= max)

const dir = mkdtempSync(join(tmpdir(), 'missive-scrape-'))
const port = await freePort()
const ADMIN = 'scrape-cost'
const m = spawnMissive({ port, env: { MISSIVE_DATA_DIR: join(dir, 'data'), MISSIVE_METRICS_CACHE_MS: '0', MISSIVE_ADMIN_TOKEN: ADMIN, MISSIVE_ACCESS_LOG: 'false' } })
const stop = (): void => {
  try {
    process.kill(-m.child.pid!, 'SIGKILL')
  } catch {
    // gone
  }
  rmSync(dir, { recursive: true, force: true })
}
process.on('SIGINT', () => {
  stop()
  process.exit(130)
})

try {
  if ((await awaitHttp(m, 30_000)) !== 'up') throw new Error(`missive did not start:\n${m.output()}`)
  const headers = { 'Client-ID': randomUUID(), 'X-Project-ID': 'scrape', 'Content-Type': 'application/json' }
  let made = 0
  /** Creates queues up to `n` (a post creates the queue), 64 requests in flight. */
  const grow = async (n: number): Promise<void> => {
    let next = made
    const worker = async (): Promise<void> => {
      for (;;) {
        const i = next++
        if (i >= n) return
        const r = await fetch(`${m.url}/v2/queues/q${i}/messages`, { method: 'POST', headers, body: '{"messages":[{"body":1}]}' })
        if (r.status !== 201) throw new Error(`post q${i}: ${r.status}`)
      }
    }
    await Promise.all(Array.from({ length: 64 }, worker))
    made = n
  }
  const scrapeOnce = async (): Promise<{ ms: number; text: string }> => {
    const t0 = performance.now()
    const text = await (await fetch(`${m.url}/metrics`)).text()
    return { ms: performance.now() - t0, text }
  }
  const queuesSeen = (text: string): number => Number(/^missive_pool_queues\{[^}]*pool="default"[^}]*\} (\d+)/m.exec(text)?.[1] ?? -1)
  console.log('| queues | scrape median ms | scrape max ms | page bytes | backlog pass seen after (s) |')
  console.log('|---:|---:|---:|---:|---:|')
  for (const n of steps) {
    await grow(n)
    const grown = performance.now()
    // The backlog scan runs on its own schedule: time until a pass has seen every queue.
    while (queuesSeen((await scrapeOnce()).text) !== n) await new Promise((r) => setTimeout(r, 200))
    const passSeconds = (performance.now() - grown) / 1000
    const times: number[] = []
    let bytes = 0
    for (let i = 0; i < 20; i++) {
      const s = await scrapeOnce()
      times.push(s.ms)
      bytes = s.text.length
    }
    times.sort((a, b) => a - b)
    console.log(`| ${n} | ${times[10]!.toFixed(1)} | ${times[19]!.toFixed(1)} | ${bytes} | ${passSeconds.toFixed(1)} |`)
  }
} finally {
  stop()
}
