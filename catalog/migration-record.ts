/**
 * A live migration as the catalog records it (docs/migration.md): one queue moving from one pool
 * to another, its progress, and the lease that lets exactly one runner (in any proxy, on any
 * host) work on it at a time. Shared by both catalog stores.
 *
 * States and transitions (the runner drives every arrow except the operator's cancel and the
 * catalog's own `removePlacement`):
 *
 * ```
 *   copying ──(runner: little left)──▶ switching ──finishSwitch──▶ cleaning ──▶ done
 *      │  ▲ (a count mismatch restarts the copy inside `switching`; the source stays fenced)
 *      │
 *      ├──(cancelMigration, removePlacement of the queue, a permanent error)──▶ cancelling
 *      │                                                                          │
 *      │                         (runner: source fence cleared, target copy dropped)
 *      │                                                                          ▼
 *      └──────────────────────────────────────────────────────────────▶ cancelled / failed
 * ```
 *
 * `copying`, `switching`, `cancelling` and `cleaning` are *active*: a queue has at most one
 * active migration, and a runner may hold its lease. `done`, `cancelled` and `failed` are final.
 * There is no way back from `switching`: from the moment the source refuses clients, only going
 * forward keeps every proxy's view consistent (a target unreachable then is retried, its error
 * shown in `error`).
 */
import { randomBytes } from 'node:crypto'
import { MissiveError } from '../shared/errors.js'

export type MigrationState = 'copying' | 'switching' | 'cleaning' | 'cancelling' | 'done' | 'cancelled' | 'failed'

export const MIGRATION_STATES: readonly MigrationState[] = ['copying', 'switching', 'cleaning', 'cancelling', 'done', 'cancelled', 'failed']

/** States in which the migration holds the queue (and a runner may hold the lease). */
export const ACTIVE_STATES: readonly MigrationState[] = ['copying', 'switching', 'cleaning', 'cancelling']

export const isActive = (s: MigrationState): boolean => s === 'copying' || s === 'switching' || s === 'cleaning' || s === 'cancelling'

/** Allowed `updateMigration` transitions (`cleaning` is reached through `finishSwitch` only). */
export const NEXT: Record<MigrationState, readonly MigrationState[]> = {
  copying: ['switching', 'cancelling'],
  switching: [],
  cleaning: ['done'],
  cancelling: ['cancelled', 'failed'],
  done: [],
  cancelled: [],
  failed: [],
}

/** True when `updateMigration` may take a migration from `from` to `to` (staying put is allowed). */
export const canMove = (from: MigrationState, to: MigrationState): boolean => from === to || NEXT[from].includes(to)

/** What the creator of a migration says. */
export interface NewMigration {
  project: string
  queue: string
  /** The pool the queue is placed on now. */
  from: string
  /** The pool it moves to. */
  to: string
  /** Copy rate limit, messages per second (0: unlimited). */
  rate: number
  /** Who asked: `admin`, `drain:<pool>`, `rebalance`, `flavor` (free text, shown in the API). */
  origin: string
}

/** One migration: what it moves and how far it got. Times are ms since the epoch; null: not yet. */
export interface Migration extends NewMigration {
  /** Sortable by creation (creation-time prefix), unique. Also the fence token in both stores. */
  id: string
  state: MigrationState
  /** The copy cursor: the source's last sequence copied (0: from the start). */
  cursor: number
  /** Messages written to the target so far (a restarted copy counts again). */
  copied: number
  /** Body bytes of those messages. */
  bytes: number
  /** Journal entries applied to the target. */
  journalApplied: number
  /** Messages in the source when last counted (for `remaining`); null before the first count. */
  sourceCount: number | null
  /** The last error the runner met (kept while it retries; the reason of `failed`). */
  error: string | null
  created: number
  started: number | null
  /** When the source was fenced `moved` (the pause began). */
  switchedAt: number | null
  finished: number | null
  /** Source fenced → placement switched, ms (the clients' pause). */
  pauseMs: number | null
  /** The runner holding the lease, or null. */
  leaseOwner: string | null
  /** When that lease ends (the catalog's clock), ms; 0 when none. */
  leaseExpires: number
}

/** What a runner may change under its lease. */
export type MigrationPatch = Partial<
  Pick<Migration, 'state' | 'cursor' | 'copied' | 'bytes' | 'journalApplied' | 'sourceCount' | 'error' | 'started' | 'switchedAt' | 'finished' | 'pauseMs'>
>

/** The patchable fields, in the order the stores store them. */
export const PATCH_FIELDS = [
  'state',
  'cursor',
  'copied',
  'bytes',
  'journalApplied',
  'sourceCount',
  'error',
  'started',
  'switchedAt',
  'finished',
  'pauseMs',
] as const satisfies readonly (keyof MigrationPatch)[]

/** Why a migration write was refused. */
export type MigrationErrorReason =
  | 'not_placed'
  | 'same_pool'
  | 'unknown_pool'
  | 'active'
  | 'busy'
  | 'not_found'
  | 'lease_lost'
  | 'bad_transition'
  | 'too_late'

/**
 * A refused migration write: 404 for `not_found`, else 409. `reason` tells callers apart (the
 * admin API turns them into clear messages); `migration` is the one in the way when known.
 */
export class MigrationError extends MissiveError {
  constructor(
    readonly reason: MigrationErrorReason,
    description: string,
    readonly migration?: string,
  ) {
    super(reason === 'not_found' ? 'not_found' : 'conflict', description)
    this.name = 'MigrationError'
  }
}

const refText = (project: string, queue: string): string => `${queue} (project ${project})`

/** The errors both stores throw, worded once. */
export const migrationErrors = {
  notPlaced: (m: NewMigration, actual: string | null) =>
    new MigrationError(
      'not_placed',
      actual === null ? `Queue ${refText(m.project, m.queue)} has no placement.` : `Queue ${refText(m.project, m.queue)} is on pool ${actual}, not ${m.from}.`,
    ),
  samePool: (m: NewMigration) => new MigrationError('same_pool', `Queue ${refText(m.project, m.queue)} is already on pool ${m.to}.`),
  unknownPool: (name: string) => new MigrationError('unknown_pool', `Pool ${name} does not exist`),
  active: (m: NewMigration, id: string) => new MigrationError('active', `Queue ${refText(m.project, m.queue)} is already being migrated (migration ${id}).`, id),
  busy: (from: string, limit: number) => new MigrationError('busy', `Pool ${from} already has ${limit} active migrations leaving it.`),
  notFound: (id: string) => new MigrationError('not_found', `Migration ${id} does not exist`, id),
  leaseLost: (id: string) => new MigrationError('lease_lost', `Migration ${id}: this runner no longer holds its lease.`, id),
  badTransition: (id: string, from: string, to: string) => new MigrationError('bad_transition', `Migration ${id} cannot go from ${from} to ${to}.`, id),
  tooLate: (id: string, state: string) =>
    new MigrationError('too_late', `Migration ${id} is ${state}: it can no longer be cancelled${state === 'done' ? ' (migrate the queue back instead)' : ''}.`, id),
}

let lastMs = 0
let seq = 0

/**
 * A new id: 10 base-36 digits of the creation time (sortable until the year 5188), 4 hex digits
 * of a per-process sequence within that millisecond (so one process's ids sort in creation
 * order), then 8 random hex digits (so two processes' ids never collide).
 */
export function newMigrationId(now: number): string {
  if (now === lastMs) seq = (seq + 1) & 0xffff
  else {
    lastMs = now
    seq = 0
  }
  return `${now.toString(36).padStart(10, '0')}${seq.toString(16).padStart(4, '0')}${randomBytes(4).toString('hex')}`
}

/** True for a string shaped like a migration id (the admin API checks before reading). */
export const isMigrationId = (s: string): boolean => /^[0-9a-z]{10}[0-9a-f]{12}$/.test(s)
