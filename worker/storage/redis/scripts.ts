/**
 * The Lua scripts, one per atomic operation (lua/<name>.lua, each with its header), with
 * lua/lib.lua prepended. Registered with ioredis `defineCommand`, which sends EVALSHA and falls
 * back to EVAL (reloading the script) on NOSCRIPT — after a SCRIPT FLUSH or a failover to a
 * server that never saw it. `load()` also SCRIPT LOADs each one at connect, so a script that
 * does not compile stops the driver from opening rather than failing the first request.
 */
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Redis } from 'ioredis'

export const SCRIPT_NAMES = [
  'createQueue',
  'setQueueMetadata',
  'deleteQueue',
  'purgeQueue',
  'postMessages',
  'listMessages',
  'getMessages',
  'deleteMessage',
  'deleteMessages',
  'popMessages',
  'claimMessages',
  'getClaim',
  'renewClaim',
  'releaseClaim',
  'stats',
  'collectGarbage',
] as const

export type ScriptName = (typeof SCRIPT_NAMES)[number]

type Arg = string | number

/** The folder holding the .lua files: next to this module, or in the source tree when running from dist/. */
function luaDir(): string {
  const here = new URL('./lua/', import.meta.url)
  const candidates = [here, new URL('../../../../worker/storage/redis/lua/', import.meta.url)]
  for (const c of candidates) if (existsSync(new URL('lib.lua', c))) return fileURLToPath(c)
  throw new Error(`the Redis driver's Lua scripts are missing (looked in ${candidates.map((c) => fileURLToPath(c)).join(', ')})`)
}

/** The source of every script, lib included, read once per process. */
let sources: Map<ScriptName, string> | undefined

export function scriptSources(): Map<ScriptName, string> {
  if (sources !== undefined) return sources
  const dir = luaDir()
  const lib = readFileSync(`${dir}/lib.lua`, 'utf8')
  sources = new Map(SCRIPT_NAMES.map((name) => [name, `${lib}\n${readFileSync(`${dir}/${name}.lua`, 'utf8')}`]))
  return sources
}

type Invoker = (numKeys: number, ...args: Arg[]) => Promise<unknown>

/** Typed access to the scripts on one connection. */
export class Scripts {
  readonly #redis: Redis
  readonly #invoke: Record<string, Invoker>

  constructor(redis: Redis) {
    this.#redis = redis
    for (const [name, lua] of scriptSources()) redis.defineCommand(name, { lua })
    this.#invoke = redis as unknown as Record<string, Invoker>
  }

  /** SCRIPT LOADs every script: a compile error surfaces here, naming the script. */
  async load(): Promise<void> {
    for (const [name, lua] of scriptSources()) {
      try {
        await this.#redis.script('LOAD', lua)
      } catch (err) {
        throw new Error(`Lua script ${name} does not load: ${(err as Error).message}`, { cause: err })
      }
    }
  }

  /** Runs script `name` with `keys` and `args` (EVALSHA, EVAL on NOSCRIPT). */
  run<T = unknown>(name: ScriptName, keys: readonly string[], args: Arg[]): Promise<T> {
    return this.#invoke[name].call(this.#redis, keys.length, ...keys, ...args) as Promise<T>
  }
}
