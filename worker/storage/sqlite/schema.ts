/**
 * The SQLite layout of the embedded message store.
 *
 * | table      | key                      | holds                                                  |
 * |------------|--------------------------|--------------------------------------------------------|
 * | `queues`   | `qid` (autoincrement)    | `project`, `name` (unique together), metadata JSON     |
 * | `messages` | `seq` (autoincrement)    | `id` (UUID, unique), `qid`, body JSON text, poster's    |
 * |            |                          | client id, ttl (s), created/expires/visible (ms),       |
 * |            |                          | claim_id, claim_expires (ms, 0 when none), claim_count |
 * | `claims`   | `id` (UUID)              | `qid`, ttl (s), expires/updated (ms)                    |
 * | `staging`  | `qid`                    | a large post being written in chunks: first seq, count  |
 * | `orphans`  | `qid`                    | a deleted or purged queue whose rows await the collector |
 * | `idempotency` | project, queue, key   | a post's ids for its idempotency key, until `expires`   |
 * | `fences`   | project, queue           | a migration's fence on the queue (token, pool, state),  |
 * |            |                          | its journal's id `jid` and the `reset` marker           |
 * | `journal`  | `version` (autoincrement) | `jid`, message `id`: one entry per changed message     |
 * | `journal_ids` | `jid` (autoincrement) | allocates journal ids (rows deleted at once)           |
 * | `dead_journals` | `jid`              | dropped journals whose entries await the collector      |
 *
 * Every message and claim row belongs to one queue row (`qid`), and the queue row to one
 * project: every lookup by id also filters on `qid`, so an id from another queue or project is
 * simply not found. `seq` is the FIFO order: it is assigned inside the posting transaction, and
 * SQLite has one writer, so it is also commit order. AUTOINCREMENT keeps sequence numbers (the
 * message markers) from ever being reused after deletes.
 *
 * Indexes are named, and the hot statements pin theirs with INDEXED BY: a file's planner
 * statistics may describe a table far smaller than it has since become, and a plan that scans
 * `messages` would turn a 50 µs lookup into a full-table read.
 *
 * Invariant: `claim_id IS NULL` ⇔ `claim_expires = 0`; a message is actively claimed iff
 * `claim_expires > now`. That lets the claim scan and the stats count read only the index.
 */
import type { Database } from 'better-sqlite3'

/**
 * 2: migration support (`fences`, `journal`, `journal_ids`, `dead_journals`). A version-1 file is
 * upgraded in place when opened: the new tables are created empty, nothing else changes.
 */
export const SCHEMA_VERSION = 2

const DDL = `
CREATE TABLE IF NOT EXISTS queues (
  qid      INTEGER PRIMARY KEY AUTOINCREMENT,
  project  TEXT    NOT NULL,
  name     TEXT    NOT NULL,
  metadata TEXT    NOT NULL,
  created  INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS queues_name ON queues (project, name);

CREATE TABLE IF NOT EXISTS messages (
  seq           INTEGER PRIMARY KEY AUTOINCREMENT,
  id            TEXT    NOT NULL,
  qid           INTEGER NOT NULL,
  body          TEXT    NOT NULL,
  client_id     TEXT    NOT NULL,
  ttl           INTEGER NOT NULL,
  created       INTEGER NOT NULL,
  expires       INTEGER NOT NULL,
  visible       INTEGER NOT NULL,
  claim_id      TEXT,
  claim_expires INTEGER NOT NULL DEFAULT 0,
  claim_count   INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_id ON messages (id);
-- The hot index: FIFO scans of one queue (list, claim, pop, stats). The trailing columns let
-- the claim and stats filters run on the index alone.
CREATE INDEX IF NOT EXISTS messages_scan ON messages (qid, seq, expires, visible, claim_expires);
-- Messages of one claim (get, renew, release).
CREATE INDEX IF NOT EXISTS messages_claim ON messages (claim_id) WHERE claim_id IS NOT NULL;
-- Garbage collection of expired messages.
CREATE INDEX IF NOT EXISTS messages_expires ON messages (expires);

CREATE TABLE IF NOT EXISTS claims (
  id      TEXT    NOT NULL,
  qid     INTEGER NOT NULL,
  ttl     INTEGER NOT NULL,
  expires INTEGER NOT NULL,
  updated INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS claims_id ON claims (id);
CREATE INDEX IF NOT EXISTS claims_queue ON claims (qid);
CREATE INDEX IF NOT EXISTS claims_expires ON claims (expires);

-- A large post being written in chunks (messages.ts): its messages are the queue's seqs from
-- from_seq on, invisible to readers until the row goes with the last chunk. A row left by a
-- crash is rolled back when the store opens.
CREATE TABLE IF NOT EXISTS staging (
  qid      INTEGER PRIMARY KEY,
  from_seq INTEGER NOT NULL,
  n        INTEGER NOT NULL
);

-- Queues deleted or purged whose messages and claims the collector has yet to delete (in
-- bounded batches: driver.ts). Nothing else reaches those rows: every lookup goes through a
-- live queue row, and a purged queue continues under a new qid.
CREATE TABLE IF NOT EXISTS orphans (
  qid INTEGER PRIMARY KEY
);

-- Idempotency keys of posts (docs/api.md, "Safe retries"): the post's ids, comma-separated,
-- kept until expires (ms). Keyed by names, not qid: like the Redis store, a key outlives a
-- delete of its queue until its window ends.
CREATE TABLE IF NOT EXISTS idempotency (
  project TEXT    NOT NULL,
  queue   TEXT    NOT NULL,
  key     TEXT    NOT NULL,
  ids     TEXT    NOT NULL,
  expires INTEGER NOT NULL,
  PRIMARY KEY (project, queue, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_expires ON idempotency (expires);

-- Migration (shared/storage/migration.ts, sqlite/migration.ts). A fence is keyed by names, not
-- qid: it must outlive the queue's row (the moved tombstone) and exist before the queue does
-- (an importing copy). jid names the fence's journal (0: none).
CREATE TABLE IF NOT EXISTS fences (
  project TEXT    NOT NULL,
  queue   TEXT    NOT NULL,
  token   TEXT    NOT NULL,
  dest    TEXT    NOT NULL,
  state   TEXT    NOT NULL,
  jid     INTEGER NOT NULL DEFAULT 0,
  reset   INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (project, queue)
) WITHOUT ROWID;
-- The journal: a message journalled again is replaced by a row with a higher version (REPLACE),
-- so versions are bumped and entries stay oldest first.
CREATE TABLE IF NOT EXISTS journal (
  version INTEGER PRIMARY KEY AUTOINCREMENT,
  jid     INTEGER NOT NULL,
  id      TEXT    NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS journal_id ON journal (jid, id);
CREATE INDEX IF NOT EXISTS journal_order ON journal (jid);
CREATE TABLE IF NOT EXISTS journal_ids (
  jid INTEGER PRIMARY KEY AUTOINCREMENT
);
-- Journals dropped (a fence cleared, a copy dropped) whose entries the collector deletes in
-- bounded batches, like orphans.
CREATE TABLE IF NOT EXISTS dead_journals (
  jid INTEGER PRIMARY KEY
);
`

/** Creates the tables and indexes if needed; refuses a file written by a newer schema. */
export function applySchema(db: Database): void {
  const version = db.pragma('user_version', { simple: true }) as number
  if (version > SCHEMA_VERSION) {
    throw new Error(`SQLite store has schema version ${version}; this Missive understands up to ${SCHEMA_VERSION}`)
  }
  db.transaction(() => {
    db.exec(DDL)
    db.pragma(`user_version = ${SCHEMA_VERSION}`)
  }).immediate()
}
