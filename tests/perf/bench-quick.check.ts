/**
 * The bench's self-check (`npm run bench:check`, docs/benchmarks.md): `npm run bench -- --quick`
 * produces a report: the JSON parses and has the expected fields, the Markdown and SVG exist. No
 * timing assertion, ever: the numbers depend on the machine.
 *
 * Not part of `npm test` (its name does not match the `*.test.ts` pattern in .taprc): it runs
 * real load for ~30 s on two cores. Needs the build (`npm run bench:check` builds first).
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { ROOT, tempDir } from '../helpers/index.js'

t.test('bench --quick writes a report', async (t) => {
  const entry = join(ROOT, 'dist/perf/bench.js')
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run "npm run build" (npm run bench:check does) first`)
  const out = await tempDir(t, 'missive-bench-')
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [entry, '--quick', '--out', out], { cwd: ROOT, env, timeout: 100_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr })
    })
  })
  t.equal(run.code, 0, `bench exits 0\n${run.stderr.slice(-3000)}`)

  const files = await readdir(out)
  const json = files.find((f) => f.endsWith('-quick.json'))
  t.ok(json, `a JSON report in ${out}: ${files.join(', ')}`)
  if (!json) return
  t.equal(run.stdout.trim(), join(out, json), 'prints the report path')
  const base = json.slice(0, -'.json'.length)
  t.ok(files.includes(`${base}.md`), 'the Markdown report exists')
  t.ok(files.includes(`${base}.svg`), 'the SVG chart exists')

  const r = JSON.parse(await readFile(join(out, json), 'utf8')) as Record<string, any>
  t.equal(r.reportVersion, 1)
  t.equal(r.kind, 'quick')
  t.match(r.commit, { hash: String, short: String, dirty: Boolean })
  t.match(r.machine, { cpus: Number, memGiB: Number, node: String, damon: String, damonPaused: false })
  t.match(r.knobs, { connections: Number, queues: Number, tenants: Number, messageBytes: Number })
  t.type(r.ceilings.hello.engine.reqPerS, 'number', 'hello-world ceiling measured')
  // The open-loop floor: one hello-world run per open-loop rate, at that scenario's request rate.
  t.equal(r.ceilings.helloOpen?.length, r.knobs.rates.length, 'an open-loop floor per offered rate')
  for (const f of r.ceilings.helloOpen ?? []) {
    t.equal(f.result.mode, 'open')
    t.equal(f.result.offered, f.msgsPerS * 0.3, 'the floor runs at the request rate of the mixed scenario (posts + claims + deletes)')
    t.ok(f.result.ops.hello?.count > 0, 'the floor answered requests')
  }
  t.ok(Array.isArray(r.stores) && r.stores.length >= 1, 'stores reported')
  const sqlite = r.stores.find((s: any) => s.store === 'sqlite')
  t.ok(sqlite?.available, `the embedded store ran (${sqlite?.reason ?? ''})`)
  for (const id of ['post1', 'post10', 'consume-bulk', 'mixed', 'observe']) {
    const sc = sqlite?.scenarios.find((s: any) => s.id === id)
    t.ok(sc, `sqlite scenario ${id} reported`)
    if (!sc) continue
    t.type(sc.result.reqPerS, 'number')
    t.type(sc.ratios.reqToHello, 'number', `${id}: ratio to the ceiling`)
    for (const op of Object.values(sc.result.ops) as any[]) t.match(op, { count: Number, p50: Number, p90: Number, p99: Number, max: Number })
  }
  t.ok(sqlite?.scenarios.some((s: any) => s.result.mode === 'open' && s.result.offered > 0), 'an open-loop scenario ran')
  const redis = r.stores.find((s: any) => s.store === 'redis')
  if (redis && !redis.available) t.type(redis.reason, 'string', 'an unavailable Redis store says why')
  // Zaqar 15 runs when installed (perf/lib/zaqar-service.ts), on the closed-loop scenarios only;
  // otherwise the report says why it has no ratio.
  const zaqar = r.stores.find((s: any) => s.store === 'zaqar')
  t.ok(zaqar, 'the Zaqar anchor is reported')
  if (zaqar?.available) {
    t.same(zaqar.scenarios.map((s: any) => s.id), ['post1', 'post10', 'consume-bulk', 'mixed'], 'Zaqar runs the closed-loop scenarios')
    t.match(r.targets.find((x: any) => x.id === 'T5')?.measured, /post10 sqlite \d/, 'T5 has ratios from this run')
  } else {
    t.type(zaqar?.reason, 'string', 'an unavailable Zaqar says why')
    t.match(r.targets.find((x: any) => x.id === 'T5')?.measured, /Zaqar was not measured in this run/)
  }
  t.ok(Array.isArray(r.targets) && r.targets.some((x: any) => x.id === 'T1'), 'targets evaluated')
  t.ok(r.targets.some((x: any) => x.id === 'M3'), "issue 3's minimum is a target")
  for (const x of r.targets) t.match(x.status, /^(pass|fail|n\/a)$/)

  const md = await readFile(join(out, `${base}.md`), 'utf8')
  t.match(md, /## Targets/)
  t.match(md, /## Missive ÷ Zaqar 15 \(same run\)/)
  t.match(md, /\| for open loop at \| hello-world req\/s \|/, 'the floor table')
  t.match(md, /\| scenario \| tool \|/)
  const svg = await readFile(join(out, `${base}.svg`), 'utf8')
  t.match(svg, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
  t.match(svg, /<\/svg>$/)
})
