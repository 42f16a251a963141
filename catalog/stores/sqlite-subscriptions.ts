/**
 * Subscriptions in the embedded catalog (catalog/subscription-record.ts): one table in the
 * catalog file, unique by (project, queue, subscriber). Expired rows are invisible to every
 * method; one that blocks a new subscriber is removed in the creating transaction, and listing
 * removes the expired rows of the queue it reads. Every create bumps the catalog's
 * meta('subscriptions') counter in its transaction (`CatalogStore.subscriptionsVersion`).
 */
import type Database from 'better-sqlite3'
import { newId } from '../../shared/ids.js'
import type { QueueRef } from '../../shared/storage/contract.js'
import type {
  CreatedSubscription,
  NewSubscription,
  Subscription,
  SubscriptionPatch,
  SubscriptionUpdate,
} from '../subscription-record.js'

export const SUBSCRIPTIONS_SCHEMA = `
CREATE TABLE IF NOT EXISTS subscriptions (
  id         TEXT PRIMARY KEY,
  project    TEXT NOT NULL,
  queue      TEXT NOT NULL,
  subscriber TEXT NOT NULL,
  ttl        INTEGER NOT NULL,
  expires    INTEGER NOT NULL,
  options    TEXT NOT NULL,
  confirmed  INTEGER NOT NULL DEFAULT 0,
  created    INTEGER NOT NULL,
  cursor     TEXT
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS subscriptions_by_subscriber ON subscriptions (project, queue, subscriber);
CREATE INDEX IF NOT EXISTS subscriptions_by_queue ON subscriptions (project, queue, id);
`

interface Row {
  id: string
  project: string
  queue: string
  subscriber: string
  ttl: number
  expires: number
  options: string
  confirmed: number
  created: number
  cursor: string | null
}

const toSubscription = (r: Row): Subscription => ({
  id: r.id,
  project: r.project,
  queue: r.queue,
  subscriber: r.subscriber,
  ttl: r.ttl,
  expires: r.expires,
  options: JSON.parse(r.options) as Record<string, unknown>,
  confirmed: r.confirmed !== 0,
  cursor: r.cursor,
  created: r.created,
})

const COLS = 'id, project, queue, subscriber, ttl, expires, options, confirmed, created, cursor'

/** The subscription methods of `SqliteCatalog`, on its connection (schema applied by the caller). */
export class SqliteSubscriptions {
  readonly #create: (s: NewSubscription, now: number) => CreatedSubscription
  readonly #update: (ref: QueueRef, id: string, patch: SubscriptionPatch, now: number) => SubscriptionUpdate
  readonly #get: Database.Statement<[string, string, string, number], Row>
  readonly #list: Database.Statement<[string, string, string, number, number], Row>
  readonly #purge: Database.Statement<[string, string, number]>
  readonly #anyExpired: Database.Statement<[string, string, number], { one: number }>
  readonly #confirm: Database.Statement<[number, string, string, string, number]>
  readonly #delete: Database.Statement<[string, string, string]>
  readonly #setCursor: Database.Statement<[string, string, string, string]>
  readonly #queues: Database.Statement<[string, string, string, number], { project: string; queue: string }>

  constructor(db: Database.Database) {
    const bySubscriber = db.prepare<[string, string, string], Row>(
      `SELECT ${COLS} FROM subscriptions WHERE project = ? AND queue = ? AND subscriber = ?`,
    )
    const deleteId = db.prepare<[string]>('DELETE FROM subscriptions WHERE id = ?')
    const bump = db.prepare("UPDATE meta SET value = value + 1 WHERE key = 'subscriptions'")
    const insert = db.prepare<[string, string, string, string, number, number, string, number]>(
      `INSERT INTO subscriptions (${COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, NULL)`,
    )
    this.#get = db.prepare(`SELECT ${COLS} FROM subscriptions WHERE project = ? AND queue = ? AND id = ? AND expires > ?`)
    this.#list = db.prepare(
      `SELECT ${COLS} FROM subscriptions WHERE project = ? AND queue = ? AND id > ? AND expires > ? ORDER BY id LIMIT ?`,
    )
    this.#purge = db.prepare('DELETE FROM subscriptions WHERE project = ? AND queue = ? AND expires <= ?')
    this.#anyExpired = db.prepare('SELECT 1 AS one FROM subscriptions WHERE project = ? AND queue = ? AND expires <= ? LIMIT 1')
    this.#confirm = db.prepare('UPDATE subscriptions SET confirmed = ? WHERE project = ? AND queue = ? AND id = ? AND expires > ?')
    this.#delete = db.prepare('DELETE FROM subscriptions WHERE project = ? AND queue = ? AND id = ?')
    this.#setCursor = db.prepare('UPDATE subscriptions SET cursor = ? WHERE project = ? AND queue = ? AND id = ?')
    this.#queues = db.prepare(
      'SELECT DISTINCT project, queue FROM subscriptions WHERE project > ? OR (project = ? AND queue > ?) ORDER BY project, queue LIMIT ?',
    )
    const update = db.prepare<[string, number, number, string, string]>(
      'UPDATE subscriptions SET subscriber = ?, ttl = ?, expires = ?, options = ? WHERE id = ?',
    )

    this.#create = db
      .transaction((s: NewSubscription, now: number): CreatedSubscription => {
        const old = bySubscriber.get(s.project, s.queue, s.subscriber)
        if (old !== undefined) {
          if (old.expires > now) return { id: old.id, created: false, confirmed: old.confirmed !== 0 }
          deleteId.run(old.id)
        }
        const id = newId(now)
        insert.run(id, s.project, s.queue, s.subscriber, s.ttl, now + s.ttl * 1000, JSON.stringify(s.options), now)
        bump.run()
        return { id, created: true, confirmed: false }
      })
      .immediate

    this.#update = db
      .transaction((ref: QueueRef, id: string, patch: SubscriptionPatch, now: number): SubscriptionUpdate => {
        const cur = this.#get.get(ref.project, ref.queue, id, now)
        if (cur === undefined) return 'not_found'
        const subscriber = patch.subscriber ?? cur.subscriber
        if (subscriber !== cur.subscriber) {
          const other = bySubscriber.get(ref.project, ref.queue, subscriber)
          if (other !== undefined) {
            if (other.expires > now) return 'duplicate'
            deleteId.run(other.id)
          }
        }
        const ttl = patch.ttl ?? cur.ttl
        const expires = patch.ttl === undefined ? cur.expires : now + patch.ttl * 1000
        const options = patch.options === undefined ? cur.options : JSON.stringify(patch.options)
        update.run(subscriber, ttl, expires, options, id)
        return 'updated'
      })
      .immediate
  }

  create(s: NewSubscription, now: number): CreatedSubscription {
    return this.#create(s, now)
  }

  get(ref: QueueRef, id: string, now: number): Subscription | null {
    const r = this.#get.get(ref.project, ref.queue, id, now)
    return r === undefined ? null : toSubscription(r)
  }

  list(ref: QueueRef, opts: { limit: number; after?: string | undefined; now: number }): Subscription[] {
    // Expired rows of this queue go first: they would otherwise stay until their subscriber
    // returns. Looked for with a read, so a listing (the notifier's, on every post) writes only
    // when there is something to remove.
    if (opts.after === undefined && this.#anyExpired.get(ref.project, ref.queue, opts.now) !== undefined) this.#purge.run(ref.project, ref.queue, opts.now)
    return this.#list.all(ref.project, ref.queue, opts.after ?? '', opts.now, opts.limit).map(toSubscription)
  }

  update(ref: QueueRef, id: string, patch: SubscriptionPatch, now: number): SubscriptionUpdate {
    return this.#update(ref, id, patch, now)
  }

  confirm(ref: QueueRef, id: string, confirmed: boolean, now: number): boolean {
    return this.#confirm.run(confirmed ? 1 : 0, ref.project, ref.queue, id, now).changes > 0
  }

  delete(ref: QueueRef, id: string): void {
    this.#delete.run(ref.project, ref.queue, id)
  }

  setCursor(ref: QueueRef, id: string, cursor: string): void {
    this.#setCursor.run(cursor, ref.project, ref.queue, id)
  }

  queues(opts: { limit: number; after?: QueueRef | undefined }): QueueRef[] {
    const a = opts.after ?? { project: '', queue: '' }
    // '' sorts first: with no `after`, (project > '') or ('' = project and queue > '') is every row.
    return this.#queues.all(a.project, a.project, a.queue, opts.limit).map((r) => ({ project: r.project, queue: r.queue }))
  }
}
