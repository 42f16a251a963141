/**
 * The runner's progress as Prometheus metrics (`missive_migration_*`, docs/metrics.md). Labels
 * are bounded: an outcome at most — never a queue, project or pool name.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { MigrationObserver } from './migration-runner.js'

/** Switch pauses: from a few ms to tens of seconds. */
const PAUSE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
/** Whole migrations: from a second to a day. */
const DURATION_BUCKETS = [1, 5, 15, 60, 300, 900, 3600, 14400, 86400]

export class MigrationMetrics implements MigrationObserver {
  readonly #running: Gauge
  readonly #messages: Counter
  readonly #bytes: Counter
  readonly #journal: Counter
  readonly #ended: Counter<'outcome'>
  readonly #duration: Histogram<'outcome'>
  readonly #errors: Counter
  readonly #pause: Histogram

  constructor(registry: Registry) {
    const registers = [registry]
    this.#running = new Gauge({ name: 'missive_migration_running', help: 'Migrations this proxy is working on now.', registers })
    this.#messages = new Counter({ name: 'missive_migration_messages_moved_total', help: 'Messages copied to target pools (a restarted copy counts again).', registers })
    this.#bytes = new Counter({ name: 'missive_migration_bytes_moved_total', help: 'Message body bytes copied to target pools.', registers })
    this.#journal = new Counter({ name: 'missive_migration_journal_entries_total', help: 'Journal entries (changes made during a copy) applied to targets.', registers })
    this.#ended = new Counter({ name: 'missive_migration_finished_total', help: 'Migrations ended by this proxy, by outcome (done, cancelled, failed).', labelNames: ['outcome'], registers })
    this.#duration = new Histogram({
      name: 'missive_migration_duration_seconds',
      help: 'Start to end of each migration, by outcome.',
      labelNames: ['outcome'],
      buckets: DURATION_BUCKETS,
      registers,
    })
    this.#errors = new Counter({ name: 'missive_migration_errors_total', help: 'Failed migration steps (retried, or rolled back when permanent).', registers })
    this.#pause = new Histogram({
      name: 'missive_migration_switch_pause_seconds',
      help: 'How long clients of a moving queue waited at the switch (source fenced to placement switched).',
      buckets: PAUSE_BUCKETS,
      registers,
    })
  }

  running(delta: number): void {
    this.#running.inc(delta)
  }
  moved(messages: number, bytes: number): void {
    this.#messages.inc(messages)
    this.#bytes.inc(bytes)
  }
  journal(entries: number): void {
    this.#journal.inc(entries)
  }
  ended(outcome: 'done' | 'cancelled' | 'failed', seconds: number): void {
    this.#ended.inc({ outcome })
    this.#duration.observe({ outcome }, seconds)
  }
  error(): void {
    this.#errors.inc()
  }
  pause(seconds: number): void {
    this.#pause.observe(seconds)
  }
}
