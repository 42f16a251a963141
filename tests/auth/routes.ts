/**
 * Every route of the route table as a concrete request, for the per-route credential tests: the
 * parameters are filled with names that exist nowhere (so an admin's call changes nothing).
 */
import { PROFILES, ROUTES } from '../../proxy/api/routes.js'

export interface RouteCall {
  method: string
  path: string
  /** Guarded by `role:admin` (proxy/auth/policy.ts). */
  admin: boolean
  label: string
}

const FILL: Record<string, string> = {
  queue: 'auth-q',
  topic: 'auth-t',
  messageId: '0190ab12-0000-7000-8000-000000000000',
  claimId: '0190ab12-0000-7000-8000-000000000001',
  pool: 'no-such-pool',
  flavor: 'no-such-flavor',
  key: '00000000deadbeef',
  subscription: '0190ab12-0000-7000-8000-000000000002',
  tenant: 'no-such-project',
}

const ADMIN = /^(?:pools|flavors|health|admin)(?:\/|$)/

/** Every route, v2 and v1.1. */
export function everyRoute(): RouteCall[] {
  const out: RouteCall[] = []
  for (const profile of PROFILES) {
    for (const r of ROUTES) {
      if (profile.name !== 'v2' && !r.v1_1) continue
      const path = `${profile.prefix}/${r.path.replace(/\{(\w+)\}/g, (_, name: string) => FILL[name]!)}`
      out.push({ method: r.method, path, admin: ADMIN.test(r.path), label: `${r.method} ${profile.prefix}/${r.path}` })
    }
  }
  return out
}
