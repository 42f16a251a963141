/**
 * Settings written as text rather than JSON (environment variables, options in storage and
 * catalog URIs, the bench's flags) become values here, through one zod schema per kind, so a
 * boolean is spelled the same way wherever a setting is written (docs/configuration.md,
 * "Settings written as text"). Query parameters of the HTTP API are not settings: they follow
 * Zaqar's rule (proxy/params.ts).
 */
import { z } from 'zod'

/** The spellings of true a text setting accepts, in any case. */
export const TRUE_WORDS = ['true', 'yes', 'on', '1'] as const
/** The spellings of false a text setting accepts, in any case. */
export const FALSE_WORDS = ['false', 'no', 'off', '0'] as const

const TRUE_SET: ReadonlySet<string> = new Set(TRUE_WORDS)

/** The accepted spellings, for error messages: `true/false, yes/no, on/off, 1/0`. */
export const BOOL_SPELLINGS = TRUE_WORDS.map((w, i) => `${w}/${FALSE_WORDS[i]}`).join(', ')

/** A boolean as text: one of TRUE_WORDS or FALSE_WORDS, any case, surrounding spaces ignored. */
export const boolText = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum([...TRUE_WORDS, ...FALSE_WORDS], { error: `must be a boolean (${BOOL_SPELLINGS})` }))
  .transform((w) => TRUE_SET.has(w))

/** A whole number as text: decimal digits with an optional minus sign, surrounding spaces ignored. */
export const intText = z
  .string()
  .trim()
  .regex(/^-?\d+$/, { error: 'must be an integer' })
  .transform(Number)

/** A whole number as text, at least `min`. */
export const intTextMin = (min: number) => intText.pipe(z.number().min(min, { error: `must be an integer ≥ ${min}` }))

/**
 * `raw` parsed with `schema`, or the first problem zod found (`must be …`), for callers that
 * phrase their own errors (`<name> must be …, got "<raw>"`).
 */
export function parseText<T>(schema: z.ZodType<T, string>, raw: string): { ok: true; value: T } | { ok: false; problem: string } {
  const r = schema.safeParse(raw)
  return r.success ? { ok: true, value: r.data } : { ok: false, problem: r.error.issues[0]?.message ?? 'is invalid' }
}
