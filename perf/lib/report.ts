/**
 * The bench report: one JSON document (the source of truth), a Markdown rendering of it, and a
 * hand-written SVG chart of latency percentiles against the offered rate, one panel per store.
 */
import type { LoadResult } from './load.js'
import type { RedisCeiling, ThroughputCeiling } from './ceilings.js'
import { noisyMarkdown, type NoisyResult } from './noisy.js'
import type { LatencySummary } from './stats.js'
import type { LatencyEvent } from './procs.js'

export const REPORT_VERSION = 1

export interface CpuUse {
  /** Cores busy on average during the scenario, per process role. */
  proxy?: number
  workers?: number
  redis?: number
  /**
   * The Redis's forked children reaped during the scenario (AOF rewrites: the bench's Redis saves
   * no RDB snapshots), from its `cutime + cstime`: a rewrite counts whole in the scenario it ends
   * in. Not part of the server CPU per message, which is the request path's.
   */
  redisRewrite?: number
  loadgen?: number
}

export interface ScenarioResult {
  id: string
  title: string
  /** Which load generator produced the numbers. */
  tool: 'engine' | 'autocannon'
  knobs: Record<string, unknown>
  result: LoadResult
  /** Throughput as a fraction of the ceiling measured in this run. */
  ratios: { reqToHello: number | null; msgsToRedisWrites: number | null }
  cpu: CpuUse
  /** Server CPU (proxy + workers + Redis) per request and per message, µs. */
  serverCpu: { usPerReq: number; usPerMsg: number } | null
  notes: string[]
  /** Redis stores: the events of Redis's latency monitor over 5 ms during the scenario, by name. */
  redisEvents?: Record<string, LatencyEvent>
  /** Redis stores: bytes the AOF grew by during the scenario, when no rewrite started it over. */
  aofGrowth?: number
}

export interface StoreResult {
  store: string
  pool: string
  available: boolean
  reason?: string
  config: Record<string, unknown>
  scenarios: ScenarioResult[]
}

export interface TargetResult {
  id: string
  what: string
  target: string
  store: string | null
  measured: string
  status: 'pass' | 'fail' | 'n/a'
}

export interface Report {
  reportVersion: number
  /** `open`: `--only open`, the open-loop rows and their floors alone. */
  kind: 'full' | 'quick' | 'open'
  startedAt: string
  finishedAt: string
  wallSeconds: number
  commit: { hash: string; short: string; dirty: boolean; subject: string }
  machine: {
    cpus: number
    cpuModel: string
    memGiB: number
    node: string
    platform: string
    release: string
    loadavgStart: number[]
    loadavgEnd: number[]
    /** The host kernel's DAMON monitors at the start (perf/lib/host.ts); absent in older reports. */
    damon?: string
    /** Whether the run paused them (`--pause-damon`). */
    damonPaused?: boolean
  }
  knobs: Record<string, unknown>
  ceilings: {
    hello: { engine: LoadResult | null; autocannon: ThroughputCeiling | null; wrk: ThroughputCeiling | null }
    /** Open-loop floor: the hello-world at each open-loop rate's request rate (see engineHelloOpen). */
    helloOpen?: { msgsPerS: number; result: LoadResult }[]
    /**
     * The durable floor at T4's rate: the hello-world writing one value of `bytes` (the AOF bytes
     * per request of the durable pool's T4 window) to a fresh Redis with `appendfsync always` per
     * request (perf/uws-hello.ts), after the same warm-up.
     */
    durableFloor?: { msgsPerS: number; bytes: number; result: LoadResult }
    redis: { ioredis: RedisCeiling | null; redisBenchmark: RedisCeiling | null; available: boolean; reason?: string }
  }
  stores: StoreResult[]
  targets: TargetResult[]
  /** The noisy-neighbour scenario per store (perf/lib/noisy.ts); absent in older reports. */
  noisy?: { store: string; result: NoisyResult }[]
  notes: string[]
  files: { json: string; md: string; svg: string; profiles: string | null }
}

const fmt = (v: number | null | undefined, digits = 0): string =>
  v === null || v === undefined || Number.isNaN(v) ? '—' : v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
const ms = (v: number | undefined): string => (v === undefined ? '—' : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0))
const ratio = (v: number | null): string => (v === null ? '—' : v >= 0.1 ? v.toFixed(2) : v.toFixed(3))

function failures(s: LatencySummary): string {
  const e = Object.entries(s.failures)
  return e.length === 0 ? '0' : e.map(([k, v]) => `${v}×${k}`).join(' ')
}

/** The scenario table for one store, one row per request type. */
export function scenarioTable(store: StoreResult): string {
  const lines = [
    '| scenario | tool | msgs/s in | msgs/s out | req/s | ×uWS | ×Redis | srv µs/msg | request | p50 ms | p90 ms | p99 ms | max ms | failures |',
    '|---|---|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|---|',
  ]
  for (const s of store.scenarios) {
    const ops = Object.entries(s.result.ops)
    ops.forEach(([op, l], i) => {
      const first = i === 0
      lines.push(
        `| ${first ? s.title : ''} | ${first ? s.tool : ''} | ${first ? fmt(s.result.msgsInPerS) : ''} | ${first ? fmt(s.result.msgsOutPerS) : ''} | ` +
          `${first ? fmt(s.result.reqPerS) : ''} | ${first ? ratio(s.ratios.reqToHello) : ''} | ${first ? ratio(s.ratios.msgsToRedisWrites) : ''} | ` +
          `${first ? fmt(s.serverCpu?.usPerMsg || null) : ''} | ` +
          `${op} | ${ms(l.p50)} | ${ms(l.p90)} | ${ms(l.p99)} | ${ms(l.max)} | ${failures(l)} |`,
      )
    })
  }
  return lines.join('\n')
}

/** The closed-loop scenarios compared with Zaqar (T5), and the throughput each is compared by. */
export const ANCHOR_SCENARIOS: { id: string; label: string; rate: (r: LoadResult) => number }[] = [
  { id: 'post1', label: 'post, 1 message', rate: (r) => r.msgsInPerS },
  { id: 'post10', label: 'post, 10 messages', rate: (r) => r.msgsInPerS },
  { id: 'consume-bulk', label: 'claim 10 + bulk delete', rate: (r) => r.msgsOutPerS },
  { id: 'mixed', label: 'mixed (in + out)', rate: (r) => r.msgsInPerS + r.msgsOutPerS },
]

/** Missive ÷ Zaqar per anchor scenario and Missive store of one run (no ratios without Zaqar). */
export function anchorRatios(stores: StoreResult[]): { id: string; ratios: { store: string; ratio: number; cpu: number | null }[] }[] {
  const z = stores.find((s) => s.store === 'zaqar' && s.available)
  return ANCHOR_SCENARIOS.map((a) => {
    const zs = z?.scenarios.find((s) => s.id === a.id)
    const zr = zs ? a.rate(zs.result) : 0
    const zc = zs?.serverCpu?.usPerMsg ?? 0
    const ratios =
      zr > 0
        ? stores
            .filter((s) => s.store !== 'zaqar' && s.available)
            .flatMap((s) => {
              const m = s.scenarios.find((x) => x.id === a.id)
              if (!m) return []
              // Server CPU per message, Zaqar's over Missive's: the same comparison, immune to
              // how much of the machine other work took during either scenario.
              const mc = m.serverCpu?.usPerMsg ?? 0
              return [{ store: s.store, ratio: a.rate(m.result) / zr, cpu: zc > 0 && mc > 0 ? zc / mc : null }]
            })
        : []
    return { id: a.id, ratios }
  })
}

/**
 * Missive against Zaqar 15 in the same run: messages/s and worst p99 of each closed-loop scenario
 * per store, and every ratio; without Zaqar, one sentence saying why there is none.
 */
export function anchorTable(stores: StoreResult[]): string {
  const z = stores.find((s) => s.store === 'zaqar')
  if (!z || !z.available) {
    return `Zaqar 15 was not measured in this run (${z ? z.reason ?? 'unavailable' : 'not in --stores'}), so there is no Missive ÷ Zaqar ratio: see docs/benchmarks.md, "Zaqar in the same run", to install it.`
  }
  const missive = stores.filter((s) => s.store !== 'zaqar' && s.available)
  const cell = (s: StoreResult, a: (typeof ANCHOR_SCENARIOS)[number]): string => {
    const x = s.scenarios.find((y) => y.id === a.id)
    if (!x) return '—'
    const p99 = Math.max(...Object.values(x.result.ops).map((o) => o.p99))
    return `${fmt(a.rate(x.result))}, p99 ${ms(p99)} ms${x.serverCpu ? `, ${fmt(x.serverCpu.usPerMsg)} µs/msg` : ''}`
  }
  const ratios = anchorRatios(stores)
  const lines = [
    `| scenario (msgs/s, worst p99, server CPU) | Zaqar 15 | ${missive.map((s) => `Missive ${s.store}`).join(' | ')} | ${missive.map((s) => `${s.store} ÷ Zaqar`).join(' | ')} |`,
    `|---|--:|${missive.map(() => '--:|').join('')}${missive.map(() => '--:|').join('')}`,
  ]
  const note =
    '\n\nRatios are throughput ÷ Zaqar\'s in the same run (bold: under the 10× target); "CPU" is Zaqar\'s server CPU per message ÷ ' +
    "Missive's (gunicorn and its workers + Zaqar's Redis, against proxy + workers + Redis), which does not depend on how busy the machine was. " +
    'Zaqar runs the way production runs it on two cores: gunicorn gthread, 2 workers × 2 threads, keep-alive, its Redis with the persistence of the Missive Redis it is compared with (perf/lib/zaqar-service.ts).'
  for (const a of ANCHOR_SCENARIOS) {
    const r = ratios.find((x) => x.id === a.id)?.ratios ?? []
    const rr = missive.map((s) => {
      const x = r.find((y) => y.store === s.store)
      if (x === undefined) return '—'
      return `${x.ratio >= 10 ? '' : '**'}${x.ratio.toFixed(1)}×${x.ratio >= 10 ? '' : '**'}${x.cpu === null ? '' : ` (CPU ${x.cpu.toFixed(1)}×)`}`
    })
    lines.push(`| ${a.label} | ${cell(z, a)} | ${missive.map((s) => cell(s, a)).join(' | ')} | ${rr.join(' | ')} |`)
  }
  return lines.join('\n') + note
}

export function targetsTable(targets: TargetResult[]): string {
  const lines = ['| # | what | target | store | measured | result |', '|---|---|---|---|---|---|']
  for (const t of targets) {
    const mark = t.status === 'pass' ? '**pass**' : t.status === 'fail' ? '**FAIL**' : 'n/a'
    lines.push(`| ${t.id} | ${t.what} | ${t.target} | ${t.store ?? '—'} | ${t.measured} | ${mark} |`)
  }
  return lines.join('\n')
}

export function renderMarkdown(r: Report): string {
  const c = r.ceilings
  const out: string[] = []
  out.push(`# Missive benchmark — ${r.startedAt.slice(0, 10)} — ${r.commit.short}${r.commit.dirty ? ' (dirty tree)' : ''}${r.kind === 'quick' ? ' — QUICK (smoke) run' : r.kind === 'open' ? ' — open loop only (`--only open`)' : ''}`)
  out.push('')
  out.push(`Commit \`${r.commit.hash}\` "${r.commit.subject}". Run took ${fmt(r.wallSeconds)} s.`)
  out.push('')
  out.push('## Machine')
  out.push('')
  out.push(`${r.machine.cpus} × ${r.machine.cpuModel}, ${fmt(r.machine.memGiB, 1)} GiB RAM, Node ${r.machine.node}, ${r.machine.platform} ${r.machine.release}. ` +
    `Load average before: ${r.machine.loadavgStart.map((v) => v.toFixed(2)).join(' / ')}; after: ${r.machine.loadavgEnd.map((v) => v.toFixed(2)).join(' / ')}. ` +
    'The load generator runs on the same cores as the service.' +
    (r.machine.damon === undefined ? '' : ` Host DAMON monitors: ${r.machine.damon}${r.machine.damonPaused ? ', paused for this run (`--pause-damon`)' : ''}.`))
  out.push('')
  out.push('## Knobs')
  out.push('')
  out.push('```json')
  out.push(JSON.stringify(r.knobs, null, 2))
  out.push('```')
  out.push('')
  out.push('## Ceilings (same run)')
  out.push('')
  out.push('| ceiling | tool | throughput | p50 ms | p99 ms |')
  out.push('|---|---|--:|--:|--:|')
  const e = c.hello.engine
  if (e) out.push(`| uWS hello-world | bench engine (${Object.values(e.ops)[0]?.count ?? 0} requests) | ${fmt(e.reqPerS)} req/s | ${ms(e.ops.hello?.p50)} | ${ms(e.ops.hello?.p99)} |`)
  if (c.hello.autocannon) out.push(`| uWS hello-world | autocannon | ${fmt(c.hello.autocannon.reqPerS)} req/s | ${ms(c.hello.autocannon.p50)} | ${ms(c.hello.autocannon.p99)} |`)
  if (c.hello.wrk) out.push(`| uWS hello-world | ${c.hello.wrk.tool} | ${fmt(c.hello.wrk.reqPerS)} req/s | ${ms(c.hello.wrk.p50)} | ${ms(c.hello.wrk.p99)} |`)
  if (c.redis.ioredis) out.push(`| Redis writes (200 B SET) | ${c.redis.ioredis.tool}, ${c.redis.ioredis.pipeline} per pipeline | ${fmt(c.redis.ioredis.writesPerS)} writes/s | | |`)
  if (c.redis.redisBenchmark) out.push(`| Redis writes (200 B SET) | ${c.redis.redisBenchmark.tool} | ${fmt(c.redis.redisBenchmark.writesPerS)} writes/s | | |`)
  if (!c.redis.available) out.push(`| Redis writes | — | not measured: ${c.redis.reason ?? 'unavailable'} | | |`)
  out.push('')
  const floors = c.helloOpen ?? []
  if (floors.length) {
    out.push('Open-loop floor: the same engine, connection pool and schedule against the uWS hello-world, at the request rate of each open-loop scenario ' +
      '(posts + claims + deletes), after the same unrecorded warm-up. It is the latency this machine and load generator give a server that does nothing.')
    out.push('')
    out.push('| for open loop at | hello-world req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |')
    out.push('|--:|--:|--:|--:|--:|--:|--:|')
    const row = (label: string, r: LoadResult): string => {
      const h = r.ops.hello
      return `| ${label} | ${fmt(r.reqPerS)} | ${ms(h?.p50)} | ${ms(h?.p90)} | ${ms(h?.p99)} | ${ms(h?.p999)} | ${ms(h?.max)} |`
    }
    for (const f of floors) out.push(row(`${fmt(f.msgsPerS)} msgs/s`, f.result))
    const d = c.durableFloor
    if (d) out.push(row(`${fmt(d.msgsPerS)} msgs/s, durable: one ${fmt(d.bytes)}-byte SET per request, AOF always`, d.result))
    out.push('')
    if (d) {
      out.push('The durable row is the floor of T4: the hello-world acknowledging each request only after one write of the durable pool\'s own AOF bytes per request ' +
        "(measured in T4's window) to a fresh Redis with `appendfsync always`, which fsyncs once per turn of its event loop before it answers. It is the latency this machine and its disk give a server that writes durably through Redis and does no queue work.")
      out.push('')
    }
  }
  out.push('`×uWS` = the scenario\'s req/s ÷ the hello-world req/s measured with the same tool in this run (the best an HTTP server on this machine can do with this load generator). ' +
    '`×Redis` = messages/s (in + out) ÷ the ioredis pipelined-write ceiling (Redis store only). `srv µs/msg` = CPU time of proxy + worker(s) + Redis per message moved (in + out), from /proc: it does not depend on how busy the machine was. `redisRewrite` in a store\'s CPU line is the AOF rewrites Redis forked and reaped during the scenario (a rewrite counts whole where it ends): machine time the request path did not spend, so not in srv µs/msg. Latencies of open-loop rows are measured from each request\'s intended send time (coordinated omission corrected).')
  out.push('')
  out.push('## Targets')
  out.push('')
  out.push(targetsTable(r.targets))
  out.push('')
  out.push('## Missive ÷ Zaqar 15 (same run)')
  out.push('')
  out.push(anchorTable(r.stores))
  out.push('')
  for (const s of r.stores) {
    out.push(`## Store: ${s.store}`)
    out.push('')
    if (!s.available) {
      out.push(`${s.store}: not available (${s.reason ?? 'unknown reason'})`)
      out.push('')
      continue
    }
    out.push(`Pool \`${s.pool}\`; ${Object.entries(s.config).map(([k, v]) => `${k}=${String(v)}`).join(', ')}.`)
    out.push('')
    out.push(scenarioTable(s))
    out.push('')
    const cpuRows = s.scenarios.filter((x) => Object.keys(x.cpu).length > 0)
    if (cpuRows.length) {
      out.push('CPU (cores busy on average): ' + cpuRows.map((x) => `${x.id}: ${Object.entries(x.cpu).map(([k, v]) => `${k} ${v?.toFixed(2)}`).join(', ')}`).join('; ') + '.')
      out.push('')
    }
    const notes = s.scenarios.flatMap((x) => x.notes.map((n) => `- ${x.id}: ${n}`))
    if (notes.length) {
      out.push(...notes)
      out.push('')
    }
  }
  if (r.noisy?.length) {
    out.push('## Noisy neighbour')
    out.push('')
    for (const n of r.noisy) out.push(noisyMarkdown(n.store, n.result))
  }
  out.push('## Chart')
  out.push('')
  out.push(`![latency percentiles vs offered rate](${r.files.svg.split('/').pop()})`)
  out.push('')
  if (r.notes.length) {
    out.push('## Notes')
    out.push('')
    for (const n of r.notes) out.push(`- ${n}`)
    out.push('')
  }
  return out.join('\n')
}

const COLORS: Record<string, string> = { post: '#1f77b4', claim: '#d62728', delete: '#2ca02c', delete1: '#9467bd', list: '#8c564b' }

/** Latency percentiles (log scale) against offered rate, one panel per store with open-loop rows. */
export function renderSvg(r: Report): string {
  const panels = r.stores
    .filter((s) => s.available)
    .map((s) => ({ store: s.store, rows: s.scenarios.filter((x) => x.result.mode === 'open' && x.result.offered !== null) }))
    .filter((p) => p.rows.length > 0)
  const W = 480
  const H = 340
  const pad = { l: 72, r: 16, t: 44, b: 50 }
  const width = Math.max(1, panels.length) * W
  const height = H + 60
  const yMin = 0.1
  const highest = Math.max(1, ...panels.flatMap((p) => p.rows.flatMap((x) => Object.values(x.result.ops).map((o) => o.max))))
  const yMax = 10 ** Math.max(3, Math.ceil(Math.log10(highest)))
  const ly = (v: number): number => {
    const c = Math.min(yMax, Math.max(yMin, v))
    return pad.t + (H - pad.t - pad.b) * (1 - (Math.log10(c) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin)))
  }
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;')
  const parts: string[] = []
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`)
  parts.push(`<rect width="${width}" height="${height}" fill="white"/>`)
  if (panels.length === 0) {
    parts.push(`<text x="20" y="40">No open-loop results in this run.</text>`)
  }
  panels.forEach((p, pi) => {
    const x0 = pi * W
    const rates = [...new Set(p.rows.map((x) => x.result.offered!))].sort((a, b) => a - b)
    const lx = (rate: number): number => {
      const i = rates.indexOf(rate)
      return x0 + pad.l + ((W - pad.l - pad.r) * (rates.length === 1 ? 0.5 : i / (rates.length - 1)))
    }
    parts.push(`<text x="${x0 + W / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">${esc(p.store)}: latency vs offered rate</text>`)
    parts.push(`<text x="${x0 + W / 2}" y="33" text-anchor="middle" fill="#555">open loop, batches of 10, corrected for coordinated omission</text>`)
    // Axes and grid.
    for (let d = Math.log10(yMin); d <= Math.log10(yMax); d++) {
      const v = 10 ** d
      const y = ly(v)
      parts.push(`<line x1="${x0 + pad.l}" x2="${x0 + W - pad.r}" y1="${y}" y2="${y}" stroke="#ddd"/>`)
      parts.push(`<text x="${x0 + pad.l - 6}" y="${y + 4}" text-anchor="end">${v >= 1 ? fmt(v) : v} ms</text>`)
    }
    const t10 = ly(10)
    parts.push(`<line x1="${x0 + pad.l}" x2="${x0 + W - pad.r}" y1="${t10}" y2="${t10}" stroke="#e00" stroke-dasharray="6 3"/>`)
    parts.push(`<text x="${x0 + W - pad.r}" y="${t10 - 4}" text-anchor="end" fill="#e00">target p99 10 ms</text>`)
    for (const rate of rates) {
      const x = lx(rate)
      parts.push(`<line x1="${x}" x2="${x}" y1="${pad.t}" y2="${H - pad.b}" stroke="#eee"/>`)
      parts.push(`<text x="${x}" y="${H - pad.b + 16}" text-anchor="middle">${fmt(rate)}</text>`)
    }
    parts.push(`<text x="${x0 + W / 2}" y="${H - pad.b + 34}" text-anchor="middle">offered messages/s (each way)</text>`)
    parts.push(`<rect x="${x0 + pad.l}" y="${pad.t}" width="${W - pad.l - pad.r}" height="${H - pad.t - pad.b}" fill="none" stroke="#888"/>`)
    const order = Object.keys(COLORS)
    const ops = [...new Set(p.rows.flatMap((x) => Object.keys(x.result.ops)))].sort((a, b) => order.indexOf(a) - order.indexOf(b))
    const styles: [keyof LatencySummary, string, number][] = [
      ['p50', '4 3', 1.5],
      ['p99', '', 2.2],
      ['max', '1 3', 1.2],
    ]
    for (const op of ops) {
      const color = COLORS[op] ?? '#333'
      for (const [pct, dash, sw] of styles) {
        const pts = p.rows
          .filter((x) => x.result.ops[op])
          .sort((a, b) => a.result.offered! - b.result.offered!)
          .map((x) => `${lx(x.result.offered!).toFixed(1)},${ly(x.result.ops[op][pct] as number).toFixed(1)}`)
        if (pts.length === 0) continue
        parts.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${color}" stroke-width="${sw}"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`)
        for (const pt of pts) {
          const [cx, cy] = pt.split(',')
          parts.push(`<circle cx="${cx}" cy="${cy}" r="2.2" fill="${color}"/>`)
        }
      }
    }
    // Legend.
    let ly0 = H + 4
    let lx0 = x0 + pad.l
    ops.forEach((op) => {
      parts.push(`<line x1="${lx0}" x2="${lx0 + 18}" y1="${ly0}" y2="${ly0}" stroke="${COLORS[op] ?? '#333'}" stroke-width="2.2"/>`)
      parts.push(`<text x="${lx0 + 22}" y="${ly0 + 4}">${esc(op)}</text>`)
      lx0 += 80
    })
    ly0 += 18
    lx0 = x0 + pad.l
    for (const [pct, dash] of styles) {
      parts.push(`<line x1="${lx0}" x2="${lx0 + 18}" y1="${ly0}" y2="${ly0}" stroke="#333" stroke-width="1.5"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`)
      parts.push(`<text x="${lx0 + 22}" y="${ly0 + 4}">${pct}</text>`)
      lx0 += 80
    }
  })
  parts.push('</svg>')
  return parts.join('\n')
}
