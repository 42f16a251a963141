/**
 * The API keys admin API (strategy `keys`; docs/auth.md, "API keys"), v2 only, admin role:
 * - `POST /v2/admin/keys` `{"project", "roles"?, "description"?, "ttl"?}` → 201 with the key,
 *   shown this once (only its hash is stored);
 * - `GET /v2/admin/keys[?limit&marker]`, `GET /v2/admin/keys/{id}`: the keys, never the secret;
 * - `DELETE /v2/admin/keys/{id}`: revokes at once on this proxy, within `auth.keyCacheMs` on
 *   every other proxy sharing the catalog.
 */
import { z } from 'zod'
import { invalidBody, MissiveError, notFound } from '../../shared/errors.js'
import type { ApiRequest } from '../api/context.js'
import { requiredBody } from '../api/body.js'
import { requireAdmin } from '../api/system.js'
import { empty, json, type Reply } from '../transport.js'
import type { KeyRecord, KeyStore } from './key-store.js'
import { newKey } from './keys.js'

const ROLE = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'a role is 1 to 64 letters, digits, "_", "." or "-"')

const CreateBody = z
  .object({
    project: z.string().min(1).max(256),
    roles: z.array(ROLE).max(16).default(['member']),
    description: z.string().max(256).default(''),
    /** Seconds until the key expires; absent: never. */
    ttl: z.int().min(1).max(10 * 365 * 86400).optional(),
  })
  .strict()

const KEY_ID = /^[0-9a-f]{16}$/

function store(req: ApiRequest): KeyStore {
  requireAdmin(req)
  const keys = req.auth.keys
  if (keys === undefined) throw notFound('API keys are only served with auth.strategy "keys".')
  return keys
}

const keyJson = (req: ApiRequest, r: KeyRecord): Record<string, unknown> => ({
  id: r.id,
  href: `${req.profile.prefix}/admin/keys/${r.id}`,
  project: r.project,
  roles: r.roles,
  description: r.description,
  created: new Date(r.created).toISOString(),
  expires: r.expires === null ? null : new Date(r.expires).toISOString(),
})

/** POST /v2/admin/keys */
export async function createKey(req: ApiRequest): Promise<Reply> {
  const keys = store(req)
  const parsed = CreateBody.safeParse(requiredBody(req))
  if (!parsed.success) {
    const i = parsed.error.issues[0]!
    throw invalidBody(`${i.path.join('.') || 'body'}: ${i.message}`)
  }
  const { project, roles, description, ttl } = parsed.data
  const { id, key, hash } = newKey()
  const created = Date.now()
  const rec: KeyRecord = { id, hash, project, roles: [...new Set(roles)], description, created, expires: ttl === undefined ? null : created + ttl * 1000 }
  await keys.put(rec)
  req.log.info({ requestId: req.requestId, key: id, project, roles: rec.roles }, 'API key created')
  return json(201, { ...keyJson(req, rec), key }, [['location', `${req.profile.prefix}/admin/keys/${id}`]])
}

/** GET /v2/admin/keys */
export async function listKeys(req: ApiRequest): Promise<Reply> {
  const keys = store(req)
  const limit = req.query.int('limit', 20)
  if (limit < 1 || limit > 1000) throw new MissiveError('invalid_parameter', 'limit must be between 1 and 1000.')
  const marker = req.query.get('marker')
  const page = await keys.list(limit, marker)
  const links = page.length === 0 ? [] : [{ rel: 'next', href: `${req.profile.prefix}/admin/keys?limit=${limit}&marker=${page[page.length - 1]!.id}` }]
  return json(200, { keys: page.map((r) => keyJson(req, r)), links })
}

async function existing(req: ApiRequest, keys: KeyStore): Promise<KeyRecord> {
  const id = req.params.key!
  const rec = KEY_ID.test(id) ? await keys.get(id) : null
  if (rec === null) throw notFound('API key does not exist.')
  return rec
}

/** GET /v2/admin/keys/{key} */
export async function getKey(req: ApiRequest): Promise<Reply> {
  const keys = store(req)
  return json(200, keyJson(req, await existing(req, keys)))
}

/** DELETE /v2/admin/keys/{key}: revokes the key. Unknown: 404. */
export async function deleteKey(req: ApiRequest): Promise<Reply> {
  const keys = store(req)
  const rec = await existing(req, keys)
  await keys.delete(rec.id)
  req.auth.forgetKey(rec.id)
  req.log.info({ requestId: req.requestId, key: rec.id, project: rec.project }, 'API key revoked')
  return empty(204)
}
