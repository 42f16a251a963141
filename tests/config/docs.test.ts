/**
 * docs/configuration.md documents every setting the configuration schema accepts: each key of
 * the file (and of `limits`) appears in backticks.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { ConfigSchema, LimitsSchema } from '../../shared/config.js'
import { ROOT } from '../helpers/index.js'

t.test('every configuration key is documented', async (t) => {
  const docs = await readFile(join(ROOT, 'docs/configuration.md'), 'utf8')
  const keys = [...Object.keys(ConfigSchema.shape), ...Object.keys(LimitsSchema.shape)]
  t.ok(keys.length > 40, `${keys.length} keys`)
  t.same(keys.filter((k) => !docs.includes(`\`${k}\``)), [], 'no key missing from docs/configuration.md')
})
