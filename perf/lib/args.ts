/**
 * A small `--flag value` / `--flag=value` / `--switch` parser with typed defaults and help text.
 * `--switch=<value>` reads the value as every text setting does (shared/config-text.ts).
 */
import { boolText, parseText } from '../../shared/config-text.js'

export interface FlagSpec {
  name: string
  type: 'string' | 'number' | 'boolean' | 'list'
  default: string | number | boolean | string[] | undefined
  help: string
}

export type Parsed = Record<string, string | number | boolean | string[] | undefined>

export class UsageError extends Error {}

export function parseArgs(argv: string[], specs: FlagSpec[]): Parsed {
  const out: Parsed = {}
  for (const s of specs) out[s.name] = s.default
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument: ${a}`)
    let name = a.slice(2)
    let value: string | undefined
    const eq = name.indexOf('=')
    if (eq >= 0) {
      value = name.slice(eq + 1)
      name = name.slice(0, eq)
    }
    let negate = false
    let spec = specs.find((s) => s.name === name)
    if (spec === undefined && name.startsWith('no-')) {
      spec = specs.find((s) => s.name === name.slice(3) && s.type === 'boolean')
      negate = spec !== undefined
    }
    if (spec === undefined) throw new UsageError(`unknown flag: --${name}`)
    if (spec.type === 'boolean') {
      if (value === undefined) {
        out[spec.name] = !negate
        continue
      }
      const b = parseText(boolText, value)
      if (!b.ok) throw new UsageError(`--${name} ${b.problem}, got "${value}"`)
      out[spec.name] = negate ? !b.value : b.value
      continue
    }
    if (value === undefined) {
      value = argv[++i]
      if (value === undefined) throw new UsageError(`--${name} needs a value`)
    }
    if (spec.type === 'number') {
      const n = Number(value)
      if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${value}"`)
      out[spec.name] = n
    } else if (spec.type === 'list') {
      out[spec.name] = value.split(',').map((v) => v.trim()).filter(Boolean)
    } else {
      out[spec.name] = value
    }
  }
  return out
}

export function helpText(specs: FlagSpec[]): string {
  return specs
    .map((s) => {
      const def = Array.isArray(s.default) ? s.default.join(',') : s.default
      const flag = s.type === 'boolean' ? `--${s.name}` : `--${s.name} <${s.type === 'list' ? 'a,b' : s.type}>`
      return `  ${flag.padEnd(28)} ${s.help}${def === undefined || def === '' || def === false ? '' : ` (default: ${def})`}`
    })
    .join('\n')
}
