/**
 * Every `missive` subcommand. To add one: write `bin/commands/<name>.ts` exporting a `Command`
 * (bin/cli/command.ts: its words, summary, options, `run`; set `admin: true` and call
 * `adminClient(ctx)` from bin/cli/admin-client.ts to talk to the admin API; print with
 * bin/cli/output.ts so `--json` works), then add it to this list. Order here is the order of
 * `missive help`.
 */
import type { Command } from '../cli/command.js'
import { backlog } from './backlog.js'
import { configCheck } from './config-check.js'
import { FLAVOR_COMMANDS } from './flavors.js'
import { LIMITS_COMMANDS } from './limits.js'
import { MIGRATE_COMMANDS } from './migrate.js'
import { POOL_COMMANDS } from './pools.js'
import { queuesList, queuesTop } from './queues.js'
import { serve } from './serve.js'
import { version } from './version.js'

export const COMMANDS: readonly Command[] = [
  serve,
  version,
  configCheck,
  ...POOL_COMMANDS,
  ...FLAVOR_COMMANDS,
  queuesList,
  queuesTop,
  backlog,
  ...MIGRATE_COMMANDS,
  ...LIMITS_COMMANDS,
]
