/**
 * Structured JSON logs (pino), one logger per process, tagged with the process role. Request
 * logs carry the request id, project, route template, status and duration — never message
 * bodies, metadata values or credentials.
 */
import { pino, type Logger } from 'pino'

export type { Logger }

/**
 * `async`: lines are buffered and written in batches off the request path (the proxy's access
 * log); call `logger.flush()` before exiting. Otherwise each line is written at once.
 */
export function createLogger(role: string, level: string = process.env.MISSIVE_LOG_LEVEL ?? 'info', opts: { async?: boolean } = {}): Logger {
  const options = {
    level,
    base: { role, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['req.headers["x-auth-token"]', 'authorization', 'password', 'token'], remove: true },
  }
  return opts.async ? pino(options, pino.destination({ dest: 1, sync: false, minLength: 4096 })) : pino(options)
}
