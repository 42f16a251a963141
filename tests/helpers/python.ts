/**
 * Running the real python-zaqarclient scripts of the interop tests.
 */
import { execFile } from 'node:child_process'
import { ROOT } from './index.js'

/** What a script run gave: its exit code (0, a number, or a spawn error's code), and its output. */
export interface PythonRun {
  code: number | string | null
  stdout: string
  stderr: string
}

/**
 * Runs `/usr/bin/python3 <args>` from the repository root, killed after `timeoutMs`. Proxy
 * settings are removed from its environment so that loopback traffic is never sent elsewhere;
 * `env` adds variables.
 */
export function runPython(args: string[], timeoutMs: number, env: Record<string, string> = {}): Promise<PythonRun> {
  const full: NodeJS.ProcessEnv = { ...process.env, ...env, PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1' }
  for (const k of ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY', 'no_proxy', 'NO_PROXY']) delete full[k]
  return new Promise((resolve) => {
    execFile('/usr/bin/python3', args, { env: full, cwd: ROOT, timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : ((err as NodeJS.ErrnoException & { code?: unknown }).code ?? null)
      resolve({ code: code as number | string | null, stdout, stderr })
    })
  })
}
