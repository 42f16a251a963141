/** `missive version` (also `missive --version`): this build's version. */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Command } from '../cli/command.js'

/** package.json's version: the nearest package.json named `missive` above this module (source or dist/). */
export function missiveVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const file = join(dir, 'package.json')
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'missive' && pkg.version !== undefined) return pkg.version
    }
    const up = dirname(dir)
    if (up === dir) return 'unknown'
    dir = up
  }
}

export const version: Command = {
  path: ['version'],
  summary: 'Print the version of Missive (and, with --json, of Node).',
  options: { json: { type: 'boolean', help: 'Print JSON: {"version", "node"}.' } },
  run(ctx) {
    const v = missiveVersion()
    ctx.stdout.write(ctx.values.json === true ? `${JSON.stringify({ version: v, node: process.versions.node })}\n` : `missive ${v}\n`)
  },
}
