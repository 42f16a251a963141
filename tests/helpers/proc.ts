/**
 * Process-state helpers for fault tests (Linux /proc).
 */
import { readFileSync } from 'node:fs'
import { alive } from './index.js'

/**
 * True while `pid` is running: it exists and is not a zombie. Unlike `alive`, a killed process
 * whose parent has not reaped it yet counts as gone (orphans of a killed tree can stay zombies
 * for a while, until whatever adopted them reaps them).
 */
export function running(pid: number): boolean {
  if (!alive(pid)) return false
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The state follows the parenthesised command name, which may itself contain ')'.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    return state !== 'Z' && state !== 'X'
  } catch {
    return false
  }
}
