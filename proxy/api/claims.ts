/** Claims: create, get, renew, release (zaqar/transport/wsgi/v2_0/claims.py). */
import { MissiveError } from '../../shared/errors.js'
import { empty, type Reply } from '../transport.js'
import { claimBody, claimLimit, claimRenewBody } from '../validate.js'
import { waitSeconds } from '../long-poll.js'
import { optionalBody, requiredBody } from './body.js'
import { messagesJson, queueHref, queueRef, type ApiRequest } from './context.js'

export async function createClaim(req: ApiRequest): Promise<Reply> {
  const limits = req.config.limits
  const limit = claimLimit(req.query.int('limit', 10), limits, 'Limit')
  const { ttl, grace } = claimBody(optionalBody(req), limits)
  const wait = req.query.has('wait') ? waitSeconds(req.query.int('wait', 0), req.config.longPollMaxWait) : 0
  const ref = queueRef(req)
  // Dead-lettering, across pools too, happens inside (proxy/pooled-driver.ts).
  const claim =
    wait > 0 && req.longPoll !== undefined
      ? await req.longPoll.run(
          ref,
          { seconds: wait, consumes: true, hook: req.abort, listen: (ms) => req.storage.listen(ref, ms) },
          () => req.storage.createClaim(ref, { ttl, grace, limit }),
          (c) => c !== null && c.messages.length > 0,
        )
      : await req.storage.createClaim(ref, { ttl, grace, limit })
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
  const claim = await req.storage.getClaim(ref, id)
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
  await req.storage.renewClaim(ref, req.params.claimId!, { ttl, grace })
  return empty(204)
}

export async function releaseClaim(req: ApiRequest): Promise<Reply> {
  const ref = queueRef(req)
  await req.storage.releaseClaim(ref, req.params.claimId!)
  // Its messages can be claimed again: wake long-polling claims (proxy/long-poll.ts).
  req.longPoll?.notify(ref, 0)
  return empty(204)
}
