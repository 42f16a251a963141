/**
 * A catalog on a Sentinel-watched Redis (`catalog = redis+sentinel://…/<master>`, docs/ha.md,
 * "Many nodes, one catalog"): one master, two replicas, three Sentinels on loopback (AOF
 * `appendfsync always`). Placements are made while the master is killed with SIGKILL: the catalog
 * follows the promoted replica on its own, every placement it acknowledged (each one WAITed for
 * by a replica, `wait=1` by default) is still there afterwards, and placing a queue again never
 * moves it. A catalog that cannot get its replicas' acknowledgement answers 503.
 */
import t from 'tap'
import { openCatalog } from '../../catalog/index.js'
import { parseRedisCatalogUri } from '../../catalog/stores/redis.js'
import type { CatalogStore } from '../../catalog/contract.js'
import { waitFor } from '../helpers/index.js'
import { startSentinelGroup } from './topology.js'

t.setTimeout(120_000)

t.test('the URI', async (t) => {
  t.match(parseRedisCatalogUri('redis+sentinel://:pw@s1,s2:26380/cat/2?prefix=x:&wait=2&sentinel_password=sp'), {
    sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26380 }],
    master: 'cat',
    db: 2,
    password: 'pw',
    prefix: 'x:',
    wait: 2,
    sentinelPassword: 'sp',
  })
  t.equal(parseRedisCatalogUri('redis+sentinel://s1/cat').wait, 1, 'a replica acknowledges each operation by default')
  t.throws(() => parseRedisCatalogUri('redis+sentinel://s1'), /malformed Redis Sentinel catalog URI/)
  t.throws(() => parseRedisCatalogUri('redis+sentinel://s1/cat?color=red'), /unknown or invalid option "color"/)
})

t.test('kill -9 the catalog master while placing queues: nothing acknowledged is lost or moved', async (t) => {
  const group = await startSentinelGroup(t, { appendfsync: 'always' })
  const catalog: CatalogStore = await openCatalog(group.uri())
  t.teardown(() => catalog.close())
  for (const name of ['a', 'b']) await catalog.putPool({ name, uri: `redis://127.0.0.1:1/${name}`, weight: 100, flavor: null, options: {} })

  const placed = new Map<string, string>()
  const okTimes: number[] = []
  let refused = 0
  let stop = false
  const placer = async (w: number): Promise<void> => {
    for (let n = 0; !stop; n++) {
      const queue = `q-${w}-${n}`
      try {
        const pool = await catalog.place({ project: 'p', queue }, n % 2 === 0 ? 'a' : 'b')
        placed.set(queue, pool)
        okTimes.push(performance.now())
      } catch (err) {
        if ((err as { code?: string }).code !== 'unavailable') t.fail(`place: ${(err as Error).message}`)
        refused++
        await new Promise((r) => setTimeout(r, 20))
      }
    }
  }
  const running = Array.from({ length: 4 }, (_, w) => placer(w))
  await waitFor(() => placed.size >= 200, { what: '200 placements', timeoutMs: 30_000 })
  const oldMaster = group.master.port
  const killedAt = performance.now()
  await group.master.kill9()
  await waitFor(async () => (await group.masterPort()) !== oldMaster, { what: 'a replica promoted', timeoutMs: 60_000 })
  const atPromotion = placed.size
  await waitFor(() => placed.size >= atPromotion + 200, { what: '200 placements after the failover', timeoutMs: 60_000 })
  stop = true
  await Promise.all(running)

  okTimes.sort((a, b) => a - b)
  let window = 0
  for (let i = 1; i < okTimes.length; i++) if (okTimes[i]! > killedAt) window = Math.max(window, okTimes[i]! - Math.max(okTimes[i - 1]!, killedAt))
  t.comment(`catalog: ${placed.size} placements acknowledged, ${refused} refused (503) around the failover; longest gap ${Math.round(window)} ms`)

  // Every operation waits for a replica: until the other replica has caught up with the new
  // master (a loaded host takes seconds), and while the connection settles after the failover,
  // the catalog answers 503, reads included. The checks retry a 503, as a client would.
  const answered = <T>(op: () => Promise<T>): Promise<T> =>
    waitFor(() => op().then((v) => ({ v }), (err: unknown) => {
      if ((err as { code?: string }).code !== 'unavailable') throw err
      return null
    }), { what: 'the catalog to answer', timeoutMs: 30_000 }).then((r) => r!.v)
  const lost: string[] = []
  const moved: string[] = []
  for (const [queue, pool] of placed) {
    const now = await answered(() => catalog.getPlacement({ project: 'p', queue }))
    if (now === null) lost.push(queue)
    else if (now !== pool) moved.push(queue)
    // Placing it again (another node's first post) lands where it is.
    if ((await answered(() => catalog.place({ project: 'p', queue }, pool === 'a' ? 'b' : 'a'))) !== pool) moved.push(queue)
  }
  t.same(lost, [], 'every acknowledged placement survived the failover')
  t.same(moved, [], 'no placement moved')
})

t.test('a catalog whose replicas cannot acknowledge answers 503', async (t) => {
  const group = await startSentinelGroup(t, { appendfsync: 'always', replicas: 1, sentinels: 1 })
  // WAIT gets half the command timeout (1 s): enough for a loaded host to answer the script first.
  const catalog = await openCatalog(`${group.uri()}?wait=2&timeout=2000`)
  t.teardown(() => catalog.close())
  await t.rejects(catalog.place({ project: 'p', queue: 'q' }, 'a'), { code: 'unavailable', message: /reached 1 of 2 replicas/ })
})

t.test('missive serve on a Sentinel catalog: pools, placements and posts go through it', async (t) => {
  const { startMissive, startRedis } = await import('../helpers/index.js')
  const { ADMIN_TOKEN, client } = await import('../pools/util.js')
  const group = await startSentinelGroup(t, { appendfsync: 'always' })
  const store = await startRedis(t, { appendfsync: 'always' })
  const m = await startMissive(t, {
    env: { MISSIVE_CATALOG: group.uri(), MISSIVE_DEFAULT_POOL: `${store.url}?durability=durable`, MISSIVE_ADMIN_TOKEN: ADMIN_TOKEN },
    timeoutMs: 60_000,
  })
  const c = client(m.baseUrl)
  t.equal((await c.req('POST', '/v2/queues/q1/messages', { body: { messages: [{ body: 1 }] } })).status, 201, 'a post places its queue')
  const catalog = await openCatalog(group.uri())
  t.teardown(() => catalog.close())
  t.equal(await catalog.getPlacement({ project: c.project, queue: 'q1' }), 'default', 'the placement is in the Sentinel catalog')
})
