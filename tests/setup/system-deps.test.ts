/**
 * scripts/system-deps.sh: `npm test`'s pretest. It installs the system packages the tests use when
 * it may (root, or sudo without a password) and otherwise prints the exact install line and exits
 * non-zero before any test runs.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../helpers/index.js'

const ROOT = join(import.meta.dirname, '..', '..')
const SCRIPT = join(ROOT, 'scripts', 'system-deps.sh')

/** Runs the script with `list` as its package list, as the given uid (default: ours). */
function runScript(list: string, uid?: number, script = SCRIPT): { status: number | null; stderr: string } {
  const cmd = uid === undefined ? 'bash' : 'setpriv'
  const args = uid === undefined
    ? [script]
    : ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', 'bash', script]
  const r = spawnSync(cmd, args, {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', MISSIVE_SYSTEM_PACKAGES: list },
    encoding: 'utf8',
  })
  return { status: r.status, stderr: r.stderr }
}

t.test('the shipped list names every package the tests need, and they are installed', async (t) => {
  const names = readFileSync(join(ROOT, 'scripts', 'system-packages.txt'), 'utf8')
    .split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean)
  for (const p of ['redis-server', 'redis-tools', 'python3-zaqarclient', 'prometheus']) {
    t.ok(names.includes(p), `${p} is listed`)
  }
  // npm test ran the script before this test: with the real list it must now find nothing to do.
  const r = runScript(join(ROOT, 'scripts', 'system-packages.txt'))
  t.equal(r.status, 0, r.stderr)
  t.equal(r.stderr, '', 'nothing to install, nothing printed')
})

t.test('without root or sudo, a missing package stops the run with the exact install line', async (t) => {
  const dir = await tempDir(t, 'missive-sysdeps-')
  chmodSync(dir, 0o755)
  const list = join(dir, 'packages.txt')
  // One installed package and one that exists nowhere: only the missing one is named.
  writeFileSync(list, 'bash # installed everywhere\nmissive-no-such-package-xyz\n')
  chmodSync(list, 0o644)
  // A copy the unprivileged user can read wherever the checkout lives.
  const script = join(dir, 'system-deps.sh')
  copyFileSync(SCRIPT, script)
  chmodSync(script, 0o755)
  const r = runScript(list, 65534, script) // nobody: not root, no password-less sudo
  t.equal(r.status, 1)
  t.match(r.stderr, /apt-get install -y --no-install-recommends missive-no-such-package-xyz'/)
  t.notMatch(r.stderr, /install[^\n]* bash/, 'installed packages are not named')
})
