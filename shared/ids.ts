import { randomUUID } from 'node:crypto'

/** A new message or claim id: a random UUID, unguessable, so knowing one id reveals no other. */
export const newId = (): string => randomUUID()

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** True for the ids `newId` makes. Drivers use it to skip malformed ids before touching storage. */
export const isId = (s: string): boolean => s.length === 36 && UUID_RE.test(s)
