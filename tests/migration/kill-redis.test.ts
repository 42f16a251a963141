/**
 * kill -9 of the source's and of the target's redis-server (`appendfsync always`, pools
 * `durability=durable`) before the copy, mid-copy, at the switch and after it, on a Redis→Redis
 * cluster (tests/migration/kill-matrix.ts says how and what is checked).
 */
import t from 'tap'
import { matrix, SERVERS } from './kill-matrix.js'

t.setTimeout(600_000)

t.test('kill -9 of each redis-server at each point of a migration (Redis → Redis, durable)', (t) => matrix(t, 'redis', SERVERS))
