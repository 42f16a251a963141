/**
 * Who a request is: the project its credential is bound to and the roles it holds. Built by an
 * `Authenticator` (proxy/auth/index.ts) before any handler runs; handlers read it through
 * `ApiRequest.identity` and the policy (proxy/auth/policy.ts).
 */

export interface Identity {
  /**
   * The project the credential belongs to. A request's `X-Project-ID` must equal it, or is filled
   * from it when absent. Undefined: the credential names no project (strategy `none`, the
   * operator's `adminToken`): `X-Project-ID` is taken as sent.
   */
  readonly project: string | undefined
  /** Role names as the credential carries them (Keystone's, or the key's). */
  readonly roles: readonly string[]
  /** Holds Zaqar's `context_is_admin` (`role:admin`): pools, flavors, health, migrations, keys. */
  readonly admin: boolean
}

/** Strategy `none`: no credential, no project binding, no roles (the admin token still works). */
export const ANONYMOUS: Identity = Object.freeze({ project: undefined, roles: Object.freeze([]), admin: false })

/** The operator's `adminToken`: admin on every project, bound to none. */
export const OPERATOR: Identity = Object.freeze({ project: undefined, roles: Object.freeze(['admin']), admin: true })

/** An identity from a credential's project and roles; `admin` follows Zaqar's `role:admin`. */
export function identityOf(project: string, roles: readonly string[]): Identity {
  return Object.freeze({ project, roles: Object.freeze([...roles]), admin: roles.includes('admin') })
}
