/**
 * Structured JSON logs (pino), one logger per process, tagged with the process role. Request
 * logs carry the request id, project, route template, status and duration — never message
 * bodies, metadata values or credentials.
 */
import { pino, type Logger } from 'pino'

export type { Logger }

export function createLogger(role: string, level: string = process.env.MISSIVE_LOG_LEVEL ?? 'info'): Logger {
  return pino({
    level,
    base: { role, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['req.headers["x-auth-token"]', 'authorization', 'password', 'token'], remove: true },
  })
}
