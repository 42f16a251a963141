/**
 * Loads a native uWebSockets.js binding, or refuses.
 *
 * uWebSockets.js ships prebuilt binaries per Node ABI, platform and libc; no single npm build covers
 * every current Node on every Linux (docs/operations.md, "Supported platforms"):
 * - `@btc-vision/uwebsockets.js@20.57` (upstream v20.57): Node 20, 22, 24, 25; its Linux binaries
 *   need glibc >= 2.38 (Debian 13, Ubuntu 24.04 and later).
 * - `@trufflesuite/uws-js-unofficial@20.30` (installed as `uWebSockets.js`): Node 16, 18, 20 on
 *   older glibc (Debian 12).
 *
 * The first that loads wins. Neither package's own entry point is used: the older one silently
 * falls back to a pure-JS shim that crashes on the first request (`getCaseSensitiveMethod: Not
 * implemented`), so its native file is required directly and no shim is ever loaded.
 */
import { createRequire } from 'node:module'
import type * as Uws from 'uWebSockets.js'

export type UwsModule = typeof Uws

/** What was tried and why it did not load; empty when a binding loaded. */
export interface UwsLoadAttempt {
  readonly build: string
  readonly error: string
}

/** No native binding loads on this Node and platform. */
export class NoNativeUws extends Error {
  readonly attempts: readonly UwsLoadAttempt[]
  constructor(attempts: readonly UwsLoadAttempt[]) {
    super(
      `no native uWebSockets.js binary loads on Node ${process.versions.node} ` +
        `(${process.platform}-${process.arch}, ABI ${process.versions.modules}). Supported: ` +
        'Node 20, 22, 24 or 25 on glibc >= 2.38 (upstream uWebSockets.js 20.57), or Node 20 on ' +
        'older glibc such as Debian 12 (uWebSockets.js 20.30). Run `npm ci` with the Node you run ' +
        'Missive with. Tried:\n' +
        attempts.map((a) => `  - ${a.build}: ${lastLine(a.error)}`).join('\n'),
    )
    this.name = 'NoNativeUws'
    this.attempts = attempts
  }
}

/**
 * The loader's own cause (dlopen's missing GLIBC version, a missing file): the error's last line,
 * Node's "Require stack" listing aside.
 */
function lastLine(message: string): string {
  const lines = message.split('\n').filter((l) => l.trim() !== '' && l !== 'Require stack:' && !l.startsWith('- '))
  return lines[lines.length - 1] ?? message
}

const require = createRequire(import.meta.url)

/** The builds to try, newest first: a package name and how to reach its native file. */
const BUILDS: readonly { build: string; load: () => unknown }[] = [
  {
    build: '@btc-vision/uwebsockets.js (upstream 20.57)',
    // Its entry point only requires the native file (it throws rather than falling back).
    load: () => require('@btc-vision/uwebsockets.js'),
  },
  {
    build: '@trufflesuite/uws-js-unofficial (20.30)',
    load: () => {
      const dir = require.resolve('uWebSockets.js/package.json').slice(0, -'package.json'.length)
      return require(`${dir}binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`)
    },
  },
]

let loaded: { uws: UwsModule; build: string } | undefined

/**
 * The native binding of the first build that loads, cached. Throws {@link NoNativeUws} (with
 * every build tried and its error) when none does.
 */
export function loadUws(): { uws: UwsModule; build: string } {
  if (loaded) return loaded
  const attempts: UwsLoadAttempt[] = []
  for (const { build, load } of BUILDS) {
    try {
      const uws = load() as UwsModule
      if (typeof uws?.App !== 'function') throw new Error('not a uWebSockets.js binding')
      loaded = { uws, build }
      return loaded
    } catch (err) {
      attempts.push({ build, error: err instanceof Error ? err.message : String(err) })
    }
  }
  throw new NoNativeUws(attempts)
}
