/**
 * Reading a Prometheus text page in tests.
 */

/** Sum of a metric's samples whose labels include `match` (every key="value" pair). */
export function metricSum(text: string, name: string, match: Record<string, string> = {}): number {
  let total = 0
  for (const line of text.split('\n')) {
    // Label values may hold braces (route templates): labels run to the last '}' of the line.
    const m = /^([a-z_:][a-z0-9_:]*)(\{.*\})? (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const labels = m[2] ?? ''
    if (Object.entries(match).every(([k, v]) => labels.includes(`${k}="${v}"`))) total += Number(m[3])
  }
  return total
}
