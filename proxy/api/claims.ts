/** Claims: create, get, renew, release (API.md §6). */
import { MissiveError } from '../../shared/errors.js'
import { empty, type Reply } from '../transport.js'
import { claimBody, claimLimit, claimRenewBody } from '../validate.js'
import { optionalBody, requiredBody } from './body.js'
import { messagesJson, queueHref, queueRef, type ApiRequest } from './context.js'

export async function createClaim(req: ApiRequest): Promise<Reply> {
  const limits = req.config.limits
  const limit = claimLimit(req.query.int('limit', 10), limits, 'Limit')
  const { ttl, grace } = claimBody(optionalBody(req), limits)
  const ref = queueRef(req)
  const router = req.router
  const driver = await router.driverFor(ref, false)
  let claim = await driver.createClaim(ref, { ttl, grace, limit, deadLetter: router.localDeadLetter(ref) })
  if (claim?.deadLetter !== undefined) {
    // Messages due for a DLQ not known to be on this pool (docs/pools.md): place or move them.
    const local = await router.deadLetters.settle(ref, driver, claim.deadLetter, req.log)
    // Only when nothing was claimed, so the response still names one claim.
    if (local && claim.messages.length === 0) {
      claim = await driver.createClaim(ref, { ttl, grace, limit, deadLetter: router.localDeadLetter(ref) })
    }
  }
  if (claim === null || claim.messages.length === 0) return empty(204)
  const base = queueHref(req)
  return {
    status: 201,
    body: `{"messages":${messagesJson(claim.messages, base)}}`,
    headers: [['location', `${base}/claims/${claim.id}`]],
  }
}

export async function getClaim(req: ApiRequest): Promise<Reply> {
  const ref = queueRef(req)
  const id = req.params.claimId!
  const claim = await (await req.router.driverFor(ref, false)).getClaim(ref, id)
  if (claim === null) throw new MissiveError('not_found', `Claim ${id} does not exist in queue ${ref.queue} for project ${ref.project}`)
  const base = queueHref(req)
  const href = JSON.stringify(`${base}/claims/${claim.id}`)
  return {
    status: 200,
    body: `{"age":${claim.age},"ttl":${claim.ttl},"href":${href},"messages":${messagesJson(claim.messages, base)}}`,
  }
}

export async function renewClaim(req: ApiRequest): Promise<Reply> {
  const { ttl, grace } = claimRenewBody(requiredBody(req), req.config.limits)
  const ref = queueRef(req)
  await (await req.router.driverFor(ref, false)).renewClaim(ref, req.params.claimId!, { ttl, grace })
  return empty(204)
}

export async function releaseClaim(req: ApiRequest): Promise<Reply> {
  const ref = queueRef(req)
  await (await req.router.driverFor(ref, false)).releaseClaim(ref, req.params.claimId!)
  return empty(204)
}
