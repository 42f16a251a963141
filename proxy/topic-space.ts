/**
 * Where topics live (docs/notifications.md, "Topics"): a topic is stored as a queue of the same
 * name in a project of its own, `TOPIC_MARK + <project>`. Every store, the catalog (placements,
 * subscriptions and their cursors) and the notifier then serve topics with the code that serves
 * queues, and yet no queue route can ever reach a topic: `X-Project-ID` may not hold control
 * characters (proxy/transport.ts, `checkProject`), so no tenant's project starts with the mark,
 * and a queue `t` and a topic `t` of one project never share a key, a listing or a subscription.
 */
import type { QueueRef } from '../shared/storage/contract.js'

/** Starts the project of every topic; holds control characters, which no real project has. */
export const TOPIC_MARK = '\u0001topics\u0001'

/** The storage project holding the topics of `project`. */
export const topicProject = (project: string): string => TOPIC_MARK + project

/** True when a stored ref is a topic's. */
export const isTopicRef = (ref: QueueRef): boolean => ref.project.startsWith(TOPIC_MARK)

/** The tenant's project of a stored ref (a topic's without the mark). */
export const tenantOf = (ref: QueueRef): string => (isTopicRef(ref) ? ref.project.slice(TOPIC_MARK.length) : ref.project)
