/**
 * Flavors admin API (zaqar/transport/wsgi/v2_0/flavors.py): `/v2/flavors` and `/v2/flavors/{flavor}`, and the same handlers
 * under `/v1.1` with v1.1's shapes (a flavor names its pool group in `pool`; see `v11Json`). A flavor is a name
 * plus the pools whose `flavor` field equals it; its capabilities are computed from its first
 * pool's storage. Flavors are global in Missive (Zaqar stores them per project while pools name
 * them globally; see docs/pools.md), and every call needs the admin token — Zaqar leaves GET open.
 */
import type { Flavor } from '../../catalog/contract.js'
import { isPoolName } from '../../catalog/pools.js'
import { poolCapabilities } from '../../shared/storage/registry.js'
import { badRequest, invalidBody, MissiveError, notFound } from '../../shared/errors.js'
import { empty, json, type Reply } from '../transport.js'
import type { ApiRequest } from './context.js'
import { bodyObject, page, pyRepr, rejectExtraKeys } from './pools.js'
import { requireAdmin } from './system.js'

const flavorHref = (req: ApiRequest, name: string): string => `${req.profile.prefix}/flavors/${name}`

/** Capabilities of a flavor: those of its first pool's storage (Zaqar's rule), none without pools. */
async function capabilities(req: ApiRequest, f: Flavor): Promise<string[]> {
  if (f.pools.length === 0) return []
  const first = await req.control.catalog.getPool(f.pools[0]!)
  return first === null ? [] : poolCapabilities(first.uri)
}

async function flavorJson(req: ApiRequest, f: Flavor): Promise<Record<string, unknown>> {
  if (req.profile.name === 'v1.1') return v11Json(req, f)
  return { name: f.name, capabilities: await capabilities(req, f), pool_list: f.pools, href: flavorHref(req, f.name) }
}

/**
 * A flavor in v1.1's shape (zaqar/api/v1_1/response.py): `pool` is the flavor's pool group,
 * which here is the flavor itself (its pools are those whose `flavor`, v1.1's `group`, names it);
 * `project` is the caller's (flavors are global here). `name` is kept: python-zaqarclient builds
 * its flavor objects from it.
 */
const v11Json = (req: ApiRequest, f: Flavor): Record<string, unknown> => ({ name: f.name, href: flavorHref(req, f.name), pool: f.name, project: req.project })

/**
 * The pools a v1.1 flavor body names: `pool_list` (what python-zaqarclient sends), else the pool
 * group `pool` — which must be the flavor's own name, since a group is a flavor here — or, with
 * neither (Zaqar 15's `{"capabilities": {}}`), the pools already in the flavor's group.
 * Undefined when the body names none of the three.
 */
async function v11Pools(req: ApiRequest, name: string, doc: Record<string, unknown>): Promise<string[] | undefined> {
  if (Object.hasOwn(doc, 'pool_list')) return poolList(doc.pool_list)
  if (Object.hasOwn(doc, 'pool')) {
    if (typeof doc.pool !== 'string') throw invalidBody(`${pyRepr(doc.pool)} is not of type 'string'`)
    if (doc.pool !== name) {
      throw invalidBody(`In this service a flavor's pool group is the flavor itself: send "pool": "${name}" (and "group": "${name}" on its pools), or a "pool_list".`)
    }
  } else if (!Object.hasOwn(doc, 'capabilities')) return undefined
  return (await req.control.catalog.listPools()).filter((p) => p.flavor === name).map((p) => p.name)
}

/** `pool_list`: an array of pool names (duplicates dropped). */
function poolList(v: unknown): string[] {
  if (!Array.isArray(v)) throw invalidBody(`${pyRepr(v)} is not of type 'array'`)
  for (const p of v) if (typeof p !== 'string') throw invalidBody(`${pyRepr(p)} is not of type 'string'`)
  return [...new Set(v as string[])]
}

/** PUT /v2/flavors/{flavor}: `{"pool_list": [...]}`; the flavor then has exactly those pools. */
export async function putFlavor(req: ApiRequest): Promise<Reply> {
  requireAdmin(req)
  const name = req.params.flavor!
  if (!isPoolName(name)) {
    throw badRequest('Flavor names may contain only ASCII letters, digits, underscores, dashes and dots, and be 1 to 64 characters long.')
  }
  const doc = bodyObject(req)
  // `capabilities` is accepted and ignored: they are computed from the pools. `pool` is legacy.
  rejectExtraKeys(doc, ['pool_list', 'capabilities', 'pool'])
  let pools: string[]
  if (req.profile.name === 'v1.1') {
    pools = (await v11Pools(req, name, doc)) ?? []
    if (pools.length === 0) throw new MissiveError('bad_request', `Flavor ${name} could not be created. `, { title: 'Unable to create' })
  } else {
    if (!Object.hasOwn(doc, 'pool_list')) throw invalidBody(`'pool_list' is a required property`)
    pools = poolList(doc.pool_list)
  }
  if (pools.length === 0) throw new MissiveError('bad_request', 'Bad Request', { title: 'Unable to create' })
  try {
    await req.control.catalog.putFlavor(name, pools)
  } catch (err) {
    if (err instanceof MissiveError && err.code === 'not_found') {
      throw new MissiveError('bad_request', `Flavor ${name} could not be created, error:${err.description ?? ''}`, { title: 'Unable to create' })
    }
    throw err
  }
  await req.control.refresh()
  return empty(201, [['location', flavorHref(req, name)]])
}

/** GET /v2/flavors/{flavor} */
export async function getFlavor(req: ApiRequest): Promise<Reply> {
  requireAdmin(req)
  const f = await req.control.catalog.getFlavor(req.params.flavor!)
  if (f === null) throw notFound(`Flavor ${req.params.flavor!} does not exist`)
  return json(200, await flavorJson(req, f))
}

/** PATCH /v2/flavors/{flavor}: `{"pool_list": [...]}` replaces the flavor's pools; 200. */
export async function patchFlavor(req: ApiRequest): Promise<Reply> {
  requireAdmin(req)
  const name = req.params.flavor!
  const doc = bodyObject(req)
  let pools: string[]
  if (req.profile.name === 'v1.1') {
    const named = await v11Pools(req, name, doc)
    if (named === undefined) throw invalidBody('One of `pool`, `pool_list` or `capabilities` needs to be specified')
    pools = named
  } else {
    if (!Object.hasOwn(doc, 'pool_list')) throw invalidBody('`pool_list` needs to be specified')
    pools = poolList(doc.pool_list)
  }
  if (pools.length === 0) throw new MissiveError('bad_request', 'Bad Request', { title: 'Unable to update' })
  const catalog = req.control.catalog
  if ((await catalog.getFlavor(name)) === null) throw notFound(`Flavor ${name} does not exist`)
  try {
    await catalog.putFlavor(name, pools)
  } catch (err) {
    if (err instanceof MissiveError && err.code === 'not_found') {
      throw new MissiveError('bad_request', `Flavor ${name} could not be updated, error:${err.description ?? ''}`, { title: 'updatefail' })
    }
    throw err
  }
  await req.control.refresh()
  const f = await catalog.getFlavor(name)
  return json(200, await flavorJson(req, f ?? { name, pools }))
}

/** DELETE /v2/flavors/{flavor}: clears the flavor on its pools; 204, also when missing. */
export async function deleteFlavor(req: ApiRequest): Promise<Reply> {
  requireAdmin(req)
  await req.control.catalog.deleteFlavor(req.params.flavor!)
  await req.control.refresh()
  return empty(204)
}

/** GET /v2/flavors?marker=&limit=&detailed= */
export async function listFlavors(req: ApiRequest): Promise<Reply> {
  requireAdmin(req)
  const detailed = req.query.bool('detailed', false)
  const all = await req.control.catalog.listFlavors()
  const { items, links, contentLocation } = page(req, all, req.config.limits.max_flavors_per_page)
  const flavors = await Promise.all(
    items.map(async (f) => {
      if (req.profile.name === 'v1.1') return v11Json(req, f)
      const item: Record<string, unknown> = { name: f.name, href: flavorHref(req, f.name) }
      if (f.pools.length > 0) item.pool_list = f.pools
      if (detailed) item.capabilities = await capabilities(req, f)
      return item
    }),
  )
  return json(200, { flavors, links }, [['content-location', contentLocation]])
}
