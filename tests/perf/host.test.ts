/**
 * perf/lib/host.ts: how the bench names the host's DAMON monitors in its report, and that the
 * listing reads this machine's sysfs without failing (it may list none).
 */
import { existsSync, readFileSync } from 'node:fs'
import t from 'tap'
import { describeDamon, kdamonds } from '../../perf/lib/host.js'

t.test('describeDamon names state, operations and scheme actions', async (t) => {
  t.equal(describeDamon([]), 'none')
  t.equal(
    describeDamon([{ dir: '/x/0', state: 'on', ops: ['paddr', 'paddr'], actions: ['pageout'] }]),
    'kdamond on (paddr; pageout)',
  )
  t.equal(
    describeDamon([
      { dir: '/x/0', state: 'off', ops: ['vaddr'], actions: [] },
      { dir: '/x/1', state: 'on', ops: [], actions: ['stat', 'lru_prio'] },
    ]),
    'kdamond off (vaddr; no scheme), kdamond on (?; stat, lru_prio)',
  )
})

t.test('kdamonds reads this machine', async (t) => {
  const list = kdamonds()
  // The kernel's own count, read independently (no DAMON sysfs: none).
  const nr = '/sys/kernel/mm/damon/admin/kdamonds/nr_kdamonds'
  t.equal(list.length, existsSync(nr) ? Number(readFileSync(nr, 'utf8')) : 0, 'one entry per kdamond the kernel counts')
  for (const k of list) {
    t.match(k.state, /^(on|off)$/, `${k.dir} has a state`)
    t.ok(Array.isArray(k.ops) && Array.isArray(k.actions))
  }
})
