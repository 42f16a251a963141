import t from 'tap'
import { parseConfig } from '../../shared/config.js'
import { childExecArgv } from '../../supervisor/node-flags.js'

t.test('children get a larger semi-space unless the operator sized the heap', async (t) => {
  t.equal(parseConfig({}).semiSpaceMb, 32, 'default 32 MB')
  t.same(childExecArgv(['--import', 'tsx'], undefined, 32), ['--import', 'tsx', '--max-semi-space-size=32'])
  t.same(childExecArgv([], '', 64), ['--max-semi-space-size=64'], 'the configured size')
  t.same(childExecArgv(['--enable-source-maps'], undefined, 0), ['--enable-source-maps'], '0: V8 decides')
  t.same(childExecArgv(['--max-semi-space-size=8'], undefined, 32), ['--max-semi-space-size=8'], "the supervisor's own flag wins")
  t.same(childExecArgv(['--max_semi_space_size=8'], undefined, 32), ['--max_semi_space_size=8'], 'in either spelling')
  t.same(childExecArgv([], '--max-old-space-size=4096 --max-semi-space-size=4', 32), [], 'NODE_OPTIONS wins')
  t.same(childExecArgv([], '--max-old-space-size=4096 --max-heap-size=2048', 32), [], 'a whole-heap size is left alone (V8 refuses all three flags together)')
  t.same(childExecArgv([], '--max-old-space-size=4096', 32), ['--max-semi-space-size=32'], 'an old-space size alone does not decide the young one')
  const argv = ['--import', 'tsx']
  childExecArgv(argv, undefined, 32)
  t.same(argv, ['--import', 'tsx'], 'the input is not changed')
})

t.test('semiSpaceMb is checked', async (t) => {
  t.throws(() => parseConfig({ semiSpaceMb: -1 }))
  t.throws(() => parseConfig({ semiSpaceMb: 4096 }))
  t.throws(() => parseConfig({ semiSpaceMb: 1.5 }))
})
