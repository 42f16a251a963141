/**
 * Zaqar's default policy (zaqar/common/policies/*.py), rule by rule: `role:admin`
 * (`context_is_admin`) guards pools, flavors and health; everything else is unprotected (any
 * authenticated caller, on its own project). Missive adds its own admin endpoints (per-pool stats,
 * migrations, API keys) to the admin side, and keeps flavor reads admin-only as it always has: a
 * flavor lists pool names, which tenants need not see (docs/auth.md, "Policy").
 */
import type { Identity } from './identity.js'

/** `role:admin` or `''` (unprotected), as Zaqar writes a rule's check string. */
export type CheckString = 'role:admin' | ''

/** Zaqar's rule names and their default check strings. */
export const POLICY: Readonly<Record<string, CheckString>> = Object.freeze({
  'queues:get_all': '',
  'queues:create': '',
  'queues:get': '',
  'queues:delete': '',
  'queues:update': '',
  'queues:stats': '',
  'queues:purge': '',
  'messages:get_all': '',
  'messages:create': '',
  'messages:get': '',
  'messages:delete': '',
  'messages:delete_all': '',
  'claims:create': '',
  'claims:get': '',
  'claims:delete': '',
  'claims:update': '',
  'ping:get': '',
  'health:get': 'role:admin',
  'pools:get_all': 'role:admin',
  'pools:create': 'role:admin',
  'pools:get': 'role:admin',
  'pools:delete': 'role:admin',
  'pools:update': 'role:admin',
  // Zaqar: unprotected; Missive: admin (see the module comment).
  'flavors:get_all': 'role:admin',
  'flavors:get': 'role:admin',
  'flavors:create': 'role:admin',
  'flavors:delete': 'role:admin',
  'flavors:update': 'role:admin',
  // Missive's own.
  'pools:stats': 'role:admin',
  'migrations:*': 'role:admin',
  'keys:*': 'role:admin',
})

/** True when `identity` passes the rule's check string (an unknown rule is admin-only). */
export function allowed(identity: Identity, rule: string): boolean {
  const check = POLICY[rule] ?? 'role:admin'
  return check === '' || identity.admin
}
