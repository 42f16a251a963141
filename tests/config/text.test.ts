/**
 * Settings written as text (shared/config-text.ts; docs/configuration.md, "Settings written as
 * text"): one boolean rule and one integer rule, and the environment overrides follow them.
 */
import t from 'tap'
import { BOOL_SPELLINGS, boolText, FALSE_WORDS, intText, intTextMin, parseText, TRUE_WORDS } from '../../shared/config-text.js'
import { ConfigError, loadConfig } from '../../shared/config.js'

t.test('booleans: true/false, yes/no, on/off, 1/0, in any case', async (t) => {
  t.equal(BOOL_SPELLINGS, 'true/false, yes/no, on/off, 1/0')
  for (const w of TRUE_WORDS) for (const v of [w, w.toUpperCase(), ` ${w[0]!.toUpperCase()}${w.slice(1)} `]) t.equal(boolText.parse(v), true, JSON.stringify(v))
  for (const w of FALSE_WORDS) for (const v of [w, w.toUpperCase(), ` ${w[0]!.toUpperCase()}${w.slice(1)} `]) t.equal(boolText.parse(v), false, JSON.stringify(v))
  for (const v of ['', 't', 'f', 'y', 'n', '2', '-1', 'truee', 'enabled', 'null']) {
    t.same(parseText(boolText, v), { ok: false, problem: 'must be a boolean (true/false, yes/no, on/off, 1/0)' }, `${JSON.stringify(v)} refused`)
  }
})

t.test('integers: decimal digits with an optional sign', async (t) => {
  t.equal(intText.parse('42'), 42)
  t.equal(intText.parse(' -7 '), -7)
  for (const v of ['', '1.5', '1e3', '0x10', 'abc', '4 2']) t.same(parseText(intText, v), { ok: false, problem: 'must be an integer' }, `${JSON.stringify(v)} refused`)
  t.equal(intTextMin(1).parse('1'), 1)
  t.same(parseText(intTextMin(1), '0'), { ok: false, problem: 'must be an integer ≥ 1' })
})

t.test('environment overrides follow the same rules', async (t) => {
  const bools = ['MISSIVE_ENABLE_V1_1', 'MISSIVE_METRICS', 'MISSIVE_METRICS_ON_API_PORT', 'MISSIVE_ACCESS_LOG'] as const
  const key = { MISSIVE_ENABLE_V1_1: 'enableV1_1', MISSIVE_METRICS: 'metrics', MISSIVE_METRICS_ON_API_PORT: 'metricsOnApiPort', MISSIVE_ACCESS_LOG: 'accessLog' } as const
  for (const name of bools) {
    for (const [raw, want] of [['OFF', false], ['No', false], ['0', false], ['false', false], ['On', true], ['YES', true], ['1', true], ['True', true]] as const) {
      t.equal(loadConfig({ [name]: raw })[key[name]], want, `${name}=${raw}`)
    }
    t.throws(() => loadConfig({ [name]: 'maybe' }), new ConfigError(`${name} must be a boolean (true/false, yes/no, on/off, 1/0), got "maybe"`))
  }
  t.equal(loadConfig({ MISSIVE_PORT: ' 9000 ' }).port, 9000)
  t.throws(() => loadConfig({ MISSIVE_PORT: 'abc' }), new ConfigError('MISSIVE_PORT must be an integer, got "abc"'))
  t.throws(() => loadConfig({ MISSIVE_WORKERS: '1.5' }), new ConfigError('MISSIVE_WORKERS must be an integer or "auto", got "1.5"'))
  t.equal(loadConfig({ MISSIVE_METRICS: '' }).metrics, true, 'an empty variable is unset (the default)')
})
