/**
 * The rate limits and quotas admin API (docs/limits.md), v2 only, admin role:
 * - `GET /v2/admin/limits/{project}`: the configured defaults, the project's override and the
 *   limits in force;
 * - `PUT /v2/admin/limits/{project}` `{"requestsPerSecond"?, "requestBurst"?, "messagesPerSecond"?,
 *   "messageBurst"?, "queuesPerProject"?, "messagesPerQueue"?, "bytesPerProject"?}`: replaces the override (absent
 *   fields take the defaults; 0: no limit);
 * - `DELETE /v2/admin/limits/{project}`: drops the override.
 * Seen at once by this proxy and within `rateLimits.overrideCacheMs` by every other one.
 */
import { isLosslessNumber } from 'lossless-json'
import { z } from 'zod'
import { invalidBody, notFound } from '../../shared/errors.js'
import { requiredBody } from '../api/body.js'
import type { ApiRequest } from '../api/context.js'
import { requireAdmin } from '../api/system.js'
import { empty, json, type Reply } from '../transport.js'
import type { RateLimiter } from './index.js'

/** The body parser keeps a fraction (`0.5`) or a huge integer exact (proxy/json.ts): a limit is a plain number. */
const plain = (v: unknown): unknown => (isLosslessNumber(v) ? Number(v.value) : typeof v === 'bigint' ? Number(v) : v)
const RATE = z.preprocess(plain, z.number().min(0).max(1e9))
const QUOTA = z.preprocess(plain, z.int().min(0).max(1e9))
const BYTES = z.preprocess(plain, z.int().min(0).max(Number.MAX_SAFE_INTEGER))
const Override = z
  .object({ requestsPerSecond: RATE, requestBurst: RATE, messagesPerSecond: RATE, messageBurst: RATE, queuesPerProject: QUOTA, messagesPerQueue: QUOTA, bytesPerProject: BYTES })
  .partial()
  .strict()

function limiter(req: ApiRequest): RateLimiter {
  requireAdmin(req)
  if (req.limiter === undefined) throw notFound('Rate limits and quotas are off (rateLimits.enabled, quotas.enabled).')
  if (req.params.tenant!.length > 256) throw invalidBody('A project id is at most 256 characters.')
  return req.limiter
}

async function view(req: ApiRequest, l: RateLimiter): Promise<Reply> {
  const project = req.params.tenant!
  const override = await l.store.get(project)
  const usage = l.usage(project)
  return json(200, { project, defaults: l.effective(null), override, effective: l.effective(override), ...(usage !== undefined && { usage }) })
}

/** GET /v2/admin/limits/{project} */
export async function getLimits(req: ApiRequest): Promise<Reply> {
  return view(req, limiter(req))
}

/** PUT /v2/admin/limits/{project} */
export async function putLimits(req: ApiRequest): Promise<Reply> {
  const l = limiter(req)
  const parsed = Override.safeParse(requiredBody(req))
  if (!parsed.success) {
    const i = parsed.error.issues[0]!
    throw invalidBody(`${i.path.join('.') || 'body'}: ${i.message}`)
  }
  await l.store.put(req.params.tenant!, parsed.data)
  l.forget(req.params.tenant!)
  // A byte quota: this proxy's scan sums stored bytes from its next pass on.
  if ((parsed.data.bytesPerProject ?? 0) > 0 && l.storedBytes !== undefined) l.storedBytes.wanted = true
  return view(req, l)
}

/** DELETE /v2/admin/limits/{project} */
export async function deleteLimits(req: ApiRequest): Promise<Reply> {
  const l = limiter(req)
  await l.store.delete(req.params.tenant!)
  l.forget(req.params.tenant!)
  return empty(204)
}
