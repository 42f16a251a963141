/**
 * The shipped alert rules (deploy/prometheus/alerts.yml; docs/ha.md, "Signals and alerts") pass
 * their unit tests, `promtool test rules deploy/prometheus/alerts.test.yml`: a pool down while its
 * worker is up fires MissivePoolDown, a host not scraped fires MissiveHostDown, the admin health
 * probe fires neither MissiveSlowRequests nor MissiveHighErrorRate while tenant traffic does, a
 * failover fires MissivePoolFailover; and every other alert of the rules has a case there.
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { ROOT } from '../helpers/index.js'

const run = promisify(execFile)
const RULES = join(ROOT, 'deploy/prometheus/alerts.yml')
const TESTS = join(ROOT, 'deploy/prometheus/alerts.test.yml')

async function promtool(args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run('promtool', args)
    return { code: 0, out: stdout + stderr }
  } catch (err) {
    const e = err as { code: number | string; stdout?: string; stderr?: string }
    if (e.code === 'ENOENT') return { code: -1, out: 'promtool is missing: apt-get install prometheus (the Debian package ships promtool)' }
    return { code: Number(e.code), out: `${e.stdout ?? ''}${e.stderr ?? ''}` }
  }
}

t.test('promtool test rules: every case passes', async (t) => {
  const r = await promtool(['test', 'rules', TESTS])
  t.equal(r.code, 0, r.out)
  t.match(r.out, /SUCCESS/)
})

t.test('every alert has a case in the unit tests', async (t) => {
  const alerts = [...readFileSync(RULES, 'utf8').matchAll(/^\s*- alert: (\S+)/gm)].map((m) => m[1]!)
  const tested = new Set([...readFileSync(TESTS, 'utf8').matchAll(/alertname: (\S+)/g)].map((m) => m[1]!))
  t.ok(alerts.length >= 7, `${alerts.length} alerts`)
  t.same(
    alerts.filter((a) => !tested.has(a)),
    [],
    'each alert has a case',
  )
})
