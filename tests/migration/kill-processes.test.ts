/**
 * kill -9 of each Missive process — proxy (it runs the migration), source worker, target worker,
 * supervisor — before the copy, mid-copy, at the switch and after it, on a durable SQLite→SQLite
 * cluster (tests/migration/kill-matrix.ts says how and what is checked).
 */
import t from 'tap'
import { matrix, PROCESSES } from './kill-matrix.js'

t.setTimeout(600_000)

t.test('kill -9 of each Missive process at each point of a migration (SQLite → SQLite, durable)', (t) => matrix(t, 'sqlite', PROCESSES))
