/** Runs the compiled `missive` CLI (dist/bin/missive.js) as a child process and collects its output. */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { ROOT } from '../helpers/index.js'

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/** `missive ...args` with `env` added to a clean environment (no MISSIVE_* from the caller's shell). */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const base: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('MISSIVE_')) base[k] = v
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [join(ROOT, 'dist/bin/missive.js'), ...args], { env: { ...base, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== 'number') return reject(err)
      resolve({ code: err === null ? 0 : (err.code as number), stdout, stderr })
    })
  })
}

/** The JSON a `--json` command printed (fails loudly with the output when it is not JSON). */
export function jsonOf<T = unknown>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T
  } catch {
    throw new Error(`not JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`)
  }
}
