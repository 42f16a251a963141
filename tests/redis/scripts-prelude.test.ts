/**
 * Each Redis script is sent with the part of lua/lib.lua it uses (worker/storage/redis/scripts.ts
 * `libFor`), not the whole file. Checked without a server: lib.lua is cut into all of its
 * top-level definitions; every name of lib.lua a script's code (or the code of a definition it
 * got) mentions is defined in what it got, in lib.lua's order; and the scripts got less than the
 * whole file. The Redis suites run every script against a real server.
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { libDefinitions, libFor, scriptSources, SCRIPT_NAMES } from '../../worker/storage/redis/scripts.js'

const lib = readFileSync(new URL('../../worker/storage/redis/lua/lib.lua', import.meta.url), 'utf8')
const defs = libDefinitions(lib)
const code = (lua: string): string => lua.replace(/--\[\[[\s\S]*?\]\]|--[^\n]*/g, '')
const words = (lua: string): Set<string> => new Set(code(lua).match(/[A-Za-z_]\w*/g) ?? [])

t.test('lib.lua is cut into every one of its top-level definitions', async (t) => {
  const topLevel = [...lib.matchAll(/^local\s+(?:function\s+(\w+)|([\w\s,]+?)\s*=)/gm)].flatMap((m) => (m[1] ?? m[2]!).split(',').map((n) => n.trim()))
  t.ok(topLevel.length > 40, `lib.lua defines ${topLevel.length} names`)
  t.same(defs.flatMap((d) => d.names), topLevel, 'the same names, in order')
  t.equal(defs.map((d) => d.text).join('\n').replace(/\s+/g, ''), lib.replace(/\s+/g, ''), 'nothing of the code left out')
})

t.test('each script gets every definition it can reach, and only from lib.lua, in order', async (t) => {
  const names = new Map(defs.flatMap((d, i) => d.names.map((n) => [n, i] as const)))
  let total = 0
  let given = 0
  for (const name of SCRIPT_NAMES) {
    const body = readFileSync(new URL(`../../worker/storage/redis/lua/${name}.lua`, import.meta.url), 'utf8')
    const prelude = libFor(defs, body)
    t.equal(scriptSources().get(name), `${prelude}\n${body}`, `${name}: sent with its prelude`)
    const got = defs.map((d, i) => [d, i] as const).filter(([d]) => prelude.includes(d.text))
    const defined = new Set(got.flatMap(([d]) => d.names))
    const missing = [...words(`${prelude}\n${body}`)].filter((w) => names.has(w) && !defined.has(w))
    t.same(missing, [], `${name}: every lib name its code mentions is defined`)
    const order = got.map(([, i]) => i)
    t.same(order, [...order].sort((a, b) => a - b), `${name}: in lib.lua's order`)
    total += defs.length
    given += got.length
  }
  t.ok(given < total * 0.75, `the scripts got ${given} definitions of ${total}, not all of lib.lua each`)
})
