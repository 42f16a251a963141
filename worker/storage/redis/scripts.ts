/**
 * The Lua scripts, one per atomic operation (lua/<name>.lua, each with its header), with the
 * definitions of lua/lib.lua each one uses prepended (`libFor`). Registered with ioredis
 * `defineCommand`, which sends EVALSHA and falls back to EVAL (reloading the script) on
 * NOSCRIPT — after a SCRIPT FLUSH or a failover to a server that never saw it. Without
 * auto-pipelining, `run` sends the same EVALSHA-then-EVAL itself (see `Scripts.run`). `load()`
 * also SCRIPT LOADs each one at connect, so a script that does not compile stops the driver from
 * opening rather than failing the first request.
 */
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Command, type Redis } from 'ioredis'

export const SCRIPT_NAMES = [
  'createQueue',
  'setQueueMetadata',
  'deleteQueue',
  'purgeQueue',
  'postMessages',
  'stageMessages',
  'listMessages',
  'getMessages',
  'deleteMessages',
  'popMessages',
  'claimMessages',
  'getClaim',
  'renewClaim',
  'releaseClaim',
  'stats',
  'storedBytes',
  'collectGarbage',
  'getQueue',
  'fenceQueue',
  'readForMigration',
  'readJournal',
  'ackJournal',
  'importMessages',
  'countForMigration',
  'dropQueueData',
  'deadLetterPut',
  'deadLetterReturn',
  'listenQueue',
] as const

export type ScriptName = (typeof SCRIPT_NAMES)[number]

type Arg = string | number

/**
 * The folder holding the .lua files: next to this module (the container image copies them into
 * dist/, deploy/Dockerfile), or in the source tree when running from dist/. A folder missing any
 * script (a copy older than the code) is passed over rather than failing at start-up.
 */
function luaDir(): string {
  const here = new URL('./lua/', import.meta.url)
  const candidates = [here, new URL('../../../../worker/storage/redis/lua/', import.meta.url)]
  const complete = (c: URL): boolean => ['lib', ...SCRIPT_NAMES].every((name) => existsSync(new URL(`${name}.lua`, c)))
  for (const c of candidates) if (complete(c)) return fileURLToPath(c)
  throw new Error(`the Redis driver's Lua scripts are missing (looked in ${candidates.map((c) => fileURLToPath(c)).join(', ')})`)
}

/** One top-level definition of lib.lua (`local function f`, `local A, B = …`) with the comments before it. */
interface LibDefinition {
  names: string[]
  text: string
}

const DEFINITION = /^local\s+(?:function\s+([A-Za-z_]\w*)|([A-Za-z_][\w\s,]*?)\s*=)/
const WORDS = /[A-Za-z_]\w*/g
/** Block comments, then line comments (the scripts have no `--` inside a string). */
const COMMENTS = /--\[\[[\s\S]*?\]\]|--[^\n]*/g

/** The names a piece of Lua mentions outside its comments. */
const wordsOf = (lua: string): string[] => lua.replace(COMMENTS, '').match(WORDS) ?? []

/** lib.lua cut into its top-level definitions, in order (the file's header comment goes with the first). */
export function libDefinitions(lib: string): LibDefinition[] {
  const defs: LibDefinition[] = []
  let pending: string[] = []
  let inBlockComment = false
  for (const line of lib.split('\n')) {
    // Comments at the margin (line and block) document the definition that follows them.
    if (inBlockComment || line.startsWith('--')) {
      if (line.startsWith('--[[')) inBlockComment = !line.includes(']]')
      else if (inBlockComment && line.includes(']]')) inBlockComment = false
      pending.push(line)
      continue
    }
    const m = DEFINITION.exec(line)
    if (m !== null) {
      defs.push({ names: m[1] !== undefined ? [m[1]] : m[2]!.split(',').map((n) => n.trim()), text: [...pending, line].join('\n') })
      pending = []
    } else if (defs.length > 0) {
      defs[defs.length - 1]!.text += `\n${[...pending, line].join('\n')}`
      pending = []
    }
  }
  return defs
}

/**
 * The definitions of lib.lua that `body` uses, directly or through other definitions, in the
 * file's order. Every call ran the whole of lib.lua first, creating each of its ~40 functions as
 * a closure: measured on Redis 7.0.15, an EVALSHA of lib.lua and `return 1` cost 3.3–4.7 µs
 * against 0.7–0.9 µs for `return 1` alone. A script only runs what it uses. Lua locals can only
 * be named, never looked up by a computed name, so any name a script could reach appears as a
 * word in its code or in the code of a definition it includes (words in strings only add more).
 */
export function libFor(defs: LibDefinition[], body: string): string {
  const used = new Set(wordsOf(body))
  const taken = new Set<LibDefinition>()
  for (let grew = true; grew; ) {
    grew = false
    for (const def of defs) {
      if (taken.has(def) || !def.names.some((n) => used.has(n))) continue
      taken.add(def)
      for (const w of wordsOf(def.text)) used.add(w)
      grew = true
    }
  }
  return defs.filter((d) => taken.has(d)).map((d) => d.text).join('\n')
}

/** The source of every script, with the part of lib.lua it uses (`libFor`), read once per process. */
let sources: Map<ScriptName, string> | undefined

export function scriptSources(): Map<ScriptName, string> {
  if (sources !== undefined) return sources
  const dir = luaDir()
  const defs = libDefinitions(readFileSync(`${dir}/lib.lua`, 'utf8'))
  sources = new Map(
    SCRIPT_NAMES.map((name) => {
      const body = readFileSync(`${dir}/${name}.lua`, 'utf8')
      return [name, `${libFor(defs, body)}\n${body}`]
    }),
  )
  return sources
}

type Invoker = (numKeys: number, ...args: Arg[]) => Promise<unknown>

/** Replies as strings, as the commands `defineCommand` makes return them. */
const COMMAND_OPTIONS = { replyEncoding: 'utf8' } as const
const NO_ARGS: never[] = []

/**
 * One script call as an ioredis command whose arguments are given as they are. The Command
 * constructor copies its arguments with `args.flat()`, which costs ~80 ns per argument (~4.5 µs
 * for a post of 10: a sixth of the worker's CPU for that request); the arguments here are already
 * flat, so the command is built empty and then given them. Numbers become strings as ioredis
 * would make them (`stringifyArguments`, public API).
 */
function scriptCommand(name: 'evalsha' | 'eval', argv: Arg[]): Command {
  const cmd = new Command(name, NO_ARGS, COMMAND_OPTIONS)
  cmd.args = argv
  cmd.stringifyArguments()
  return cmd
}

/** Typed access to the scripts on one connection. */
export class Scripts {
  readonly #redis: Redis
  readonly #invoke: Record<string, Invoker>
  /** Source and SHA1 of each script, for `run`'s own EVALSHA / EVAL. */
  readonly #scripts = new Map<string, { lua: string; sha: string }>()
  /**
   * `run` sends its commands itself unless ioredis must see them: auto-pipelining gathers the
   * defined commands into pipelines, and a key prefix would have to be added to the keys.
   */
  readonly #direct: boolean

  constructor(redis: Redis) {
    this.#redis = redis
    for (const [name, lua] of scriptSources()) {
      redis.defineCommand(name, { lua })
      this.#scripts.set(name, { lua, sha: createHash('sha1').update(lua).digest('hex') })
    }
    this.#invoke = redis as unknown as Record<string, Invoker>
    this.#direct = !redis.options.enableAutoPipelining && !redis.options.keyPrefix
  }

  /**
   * The first key of the script `run` issued last: the key whose server the write went to, for
   * a WAIT issued in the same tick (a Cluster pool sends it to that key's master).
   */
  lastKey = ''

  /**
   * SCRIPT LOADs every script on `servers` (default: the connection; a Cluster pool: every
   * master): a compile error surfaces here, naming the script.
   */
  async load(servers: readonly Redis[] = [this.#redis]): Promise<void> {
    for (const [name, lua] of scriptSources()) {
      try {
        for (const server of servers) await server.script('LOAD', lua)
      } catch (err) {
        throw new Error(`Lua script ${name} does not load: ${(err as Error).message}`, { cause: err })
      }
    }
  }

  /**
   * Runs `send`, which starts several script calls, with the connection corked: calls sent
   * synchronously inside it leave in one write instead of one each. A write to Redis is a system
   * call that also wakes Redis up, and on this 2-core guest it was the proxy's largest cost after
   * its replies to clients (post 1: 17.9 % of its CPU, ~37 µs a script call). A Cluster (no
   * single connection) or a client that sends through ioredis's own queue just runs `send`. An
   * arrow property, so coalescers take it as it is (CoalescerOptions.together).
   */
  readonly together = (send: () => void): void => {
    // The connection's current socket (ioredis replaces it on reconnect); a Cluster has none.
    const stream = this.#direct ? (this.#redis as { stream?: { cork(): void; uncork(): void } }).stream : undefined
    if (stream === undefined) {
      send()
      return
    }
    stream.cork()
    try {
      send()
    } finally {
      stream.uncork()
    }
  }

  /** Runs script `name` with `keys` and `args` (EVALSHA, EVAL on NOSCRIPT). */
  run<T = unknown>(name: ScriptName, keys: readonly string[], args: Arg[]): Promise<T> {
    this.lastKey = keys[0]!
    if (!this.#direct) return this.#invoke[name].call(this.#redis, keys.length, ...keys, ...args) as Promise<T>
    const { lua, sha } = this.#scripts.get(name)!
    const argv: Arg[] = [sha, keys.length, ...keys, ...args]
    // As ioredis does for a defined command: EVALSHA, and on NOSCRIPT the same call as an EVAL,
    // which also caches the script on the server again.
    const send = (cmd: Command) => this.#redis.sendCommand(cmd) as Promise<T>
    return send(scriptCommand('evalsha', argv)).catch((err: unknown) => {
      if (!(err instanceof Error) || !err.message.includes('NOSCRIPT')) throw err
      const again = argv.slice()
      again[0] = lua
      return send(scriptCommand('eval', again))
    })
  }
}
