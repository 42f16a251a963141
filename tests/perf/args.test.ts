/**
 * The bench's flag parser (perf/lib/args.ts), without running any load: defaults, both value
 * forms, negated switches, lists, and the usage errors.
 */
import t from 'tap'
import { helpText, parseArgs, UsageError, type FlagSpec } from '../../perf/lib/args.js'

const SPECS: FlagSpec[] = [
  { name: 'quick', type: 'boolean', default: false, help: 'smoke suite' },
  { name: 'duration', type: 'number', default: 8, help: 'seconds per scenario' },
  { name: 'stores', type: 'list', default: ['sqlite', 'redis'], help: 'stores to run' },
  { name: 'out', type: 'string', default: 'perf/results', help: 'report directory' },
]

t.test('defaults, both value forms, switches and lists', async (t) => {
  t.same(parseArgs([], SPECS), { quick: false, duration: 8, stores: ['sqlite', 'redis'], out: 'perf/results' })
  t.same(parseArgs(['--quick', '--duration', '2', '--stores=sqlite', '--out=/tmp/x'], SPECS), {
    quick: true,
    duration: 2,
    stores: ['sqlite'],
    out: '/tmp/x',
  })
  t.equal(parseArgs(['--quick', '--no-quick'], SPECS).quick, false, '--no-<switch> turns it off')
  t.equal(parseArgs(['--quick=yes'], SPECS).quick, true)
  t.equal(parseArgs(['--quick=0'], SPECS).quick, false)
  t.equal(parseArgs(['--quick=OFF'], SPECS).quick, false, 'the text-setting boolean rule, any case')
  t.equal(parseArgs(['--no-quick=no'], SPECS).quick, true, '--no-<switch>=no turns it on')
  t.same(parseArgs(['--stores', ' sqlite , ,redis '], SPECS).stores, ['sqlite', 'redis'], 'list items trimmed, empty ones dropped')
})

t.test('usage errors', async (t) => {
  t.throws(() => parseArgs(['quick'], SPECS), new UsageError('unexpected argument: quick'))
  t.throws(() => parseArgs(['--fast'], SPECS), new UsageError('unknown flag: --fast'))
  t.throws(() => parseArgs(['--no-duration'], SPECS), new UsageError('unknown flag: --no-duration'), 'only switches negate')
  t.throws(() => parseArgs(['--quick=maybe'], SPECS), new UsageError('--quick must be a boolean (true/false, yes/no, on/off, 1/0), got "maybe"'), 'not silently false')
  t.throws(() => parseArgs(['--duration'], SPECS), new UsageError('--duration needs a value'))
  t.throws(() => parseArgs(['--duration', 'x'], SPECS), new UsageError('--duration must be a number, got "x"'))
})

t.test('help text shows each flag with its non-empty default', async (t) => {
  const lines = helpText(SPECS).split('\n')
  t.equal(lines.length, SPECS.length)
  t.match(lines[0], /^ {2}--quick +smoke suite$/, 'a false switch shows no default')
  t.match(lines[1], /--duration <number> +seconds per scenario \(default: 8\)$/)
  t.match(lines[2], /--stores <a,b> +stores to run \(default: sqlite,redis\)$/)
})
