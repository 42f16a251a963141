/**
 * The packaging in deploy/ (docs/deploy.md), as far as these machines can run it:
 * - the systemd unit passes `systemd-analyze verify` with no warning about it, and its exit-code
 *   rules match the CLI's;
 * - the Dockerfile is multi-stage, non-root, read-only friendly, and its HEALTHCHECK command,
 *   run as written against a real `missive serve`, passes (and fails with nothing listening);
 *   its TypeScript project compiles the service alone;
 * - the compose file wires Missive, Redis (the shipped durable config), Prometheus (the shipped
 *   rules; `promtool check config` passes) and Grafana (the shipped dashboard), every file it
 *   mounts exists;
 * - the Kubernetes manifests have probes, resources, a non-root read-only security context and a
 *   PodDisruptionBudget that selects the pods, and their probe requests, sent to a real `missive
 *   serve` exactly as the kubelet would, succeed.
 */
import { execFile } from 'node:child_process'
import { copyFileSync, cpSync, existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { parseAllDocuments, parse as parseYaml } from 'yaml'
import { EXIT } from '../../bin/cli/command.js'
import { SCRIPT_NAMES } from '../../worker/storage/redis/scripts.js'
import { freePort, ROOT, startMissive, tempDir } from '../helpers/index.js'

const run = promisify(execFile)
const DEPLOY = join(ROOT, 'deploy')
const read = (p: string): string => readFileSync(join(DEPLOY, p), 'utf8')

async function exitOf(cmd: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  try {
    // Without tap's loaders (NODE_OPTIONS): the commands run as they would in an image or a unit.
    const clean: Record<string, string | undefined> = { ...process.env, ...env }
    for (const k of Object.keys(clean)) if (k === 'NODE_OPTIONS' || k.startsWith('_TAPJS') || k.startsWith('TAP')) delete clean[k]
    const { stdout, stderr } = await run(cmd, args, { env: clean, timeout: 120_000 })
    return { code: 0, out: stdout + stderr }
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}${typeof e.code === 'string' ? e.code : ''}` }
  }
}

t.test('systemd unit: systemd-analyze verify, hardening, exit codes', async (t) => {
  const unit = join(DEPLOY, 'systemd/missive.service')
  const r = await exitOf('systemd-analyze', ['verify', unit])
  t.not(r.code, -1, 'systemd-analyze is installed (Debian: systemd)')
  t.equal(r.code, 0, r.out)
  // verify exits 0 on directives it ignores: any line about this unit is a mistake in it.
  const ours = r.out.split('\n').filter((l) => l.includes('missive.service'))
  t.same(ours, [], 'no warning about the unit')
  const text = readFileSync(unit, 'utf8')
  for (const d of ['NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes', 'PrivateTmp=yes', 'CapabilityBoundingSet=', 'SystemCallFilter=@system-service', 'StateDirectory=missive', 'KillMode=mixed']) {
    t.match(text, new RegExp(`^${d}$`, 'm'), d)
  }
  t.match(text, new RegExp(`^RestartPreventExitStatus=${EXIT.usage} ${EXIT.unsupported}$`, 'm'), 'no restart loop on a configuration error or an unsupported platform')
  t.match(text, /^ExecStart=\S+node \S+\/dist\/bin\/missive\.js serve$/m)
  t.match(text, /^ExecStartPre=\S+node \S+\/dist\/bin\/missive\.js config check$/m)
})

/** The Dockerfile's instructions, continuation lines joined. */
function dockerfile(): string[] {
  return read('Dockerfile')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
}

t.test('Dockerfile: multi-stage, non-root, read-only friendly, a HEALTHCHECK that works', async (t) => {
  const lines = dockerfile()
  const froms = lines.filter((l) => l.startsWith('FROM '))
  t.ok(froms.length >= 2, 'multi-stage')
  const final = lines.slice(lines.lastIndexOf(froms[froms.length - 1]!))
  const user = final.find((l) => l.startsWith('USER '))
  t.match(user, /^USER [1-9]\d*(:[1-9]\d*)?$/, 'the runtime stage runs as a numeric non-root user')
  t.ok(final.some((l) => /^COPY --from=build /.test(l)), 'the runtime stage copies the build, not the sources')
  t.notOk(final.some((l) => /apt-get install .*(g\+\+|make)/.test(l)), 'no compilers in the runtime stage')
  t.match(lines.find((l) => l.startsWith('ENV ')), /MISSIVE_DATA_DIR=\/var\/lib\/missive/)
  t.ok(final.includes('VOLUME ["/var/lib/missive"]'), 'all state on a volume: the root file system can be read-only')
  t.match(lines.find((l) => l.startsWith('ARG NODE_IMAGE=')), /^ARG NODE_IMAGE=node:\d+-(trixie|bookworm)/, 'a glibc (Debian) base')
  const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n')
  t.ok(ignore.includes('node_modules') && ignore.includes('dist'), '.dockerignore keeps local installs out of the context')
  for (const l of lines.filter((x) => /^COPY (?!--from)/.test(x))) {
    for (const src of l.split(/\s+/).slice(1, -1)) t.ok(existsSync(join(ROOT, src)), `COPY source ${src} exists`)
  }

  const hc = lines.find((l) => l.startsWith('HEALTHCHECK '))
  t.ok(hc, 'HEALTHCHECK')
  const cmd = JSON.parse(hc!.slice(hc!.indexOf('CMD ') + 4)) as string[]
  t.equal(cmd[0], 'node')
  const m = await startMissive(t)
  const healthy = await exitOf(process.execPath, cmd.slice(1), { MISSIVE_PORT: String(m.port) })
  t.equal(healthy.code, 0, `the HEALTHCHECK passes against a running service: ${healthy.out}`)
  const nothing = await exitOf(process.execPath, cmd.slice(1), { MISSIVE_PORT: String(await freePort()) })
  t.equal(nothing.code, 1, 'and fails with nothing listening')

  const out = await tempDir(t)
  // Through sh, NODE_OPTIONS unset: tap's process tracking adds its loaders to every child's
  // NODE_OPTIONS, and tsc (an ES module) will not load under them.
  const tsc = await exitOf('sh', ['-c', 'unset NODE_OPTIONS; exec "$0" "$@"', process.execPath, join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(DEPLOY, 'tsconfig.image.json'), '--outDir', out])
  t.equal(tsc.code, 0, `deploy/tsconfig.image.json compiles the service alone: ${tsc.out}`)
  t.ok(existsSync(join(out, 'bin/missive.js')), 'to the path the ENTRYPOINT runs (dist/bin/missive.js)')
  t.notOk(existsSync(join(out, 'tests')), 'without the tests')
  t.match(lines.find((l) => l.startsWith('ENTRYPOINT ')), /"\/opt\/missive\/dist\/bin\/missive\.js"/)

  // The runtime stage has dist/ and node_modules only: the build stage's own copies into dist/,
  // run here into `out`, must bring every file the service reads beside its modules (the Redis
  // driver's Lua scripts; without them a Redis pool failed to open in the image).
  const build = lines.slice(0, lines.indexOf(froms[1]!))
  const copies = build.flatMap((l) => [...l.matchAll(/\bcp -r (\S+) dist\/(\S+)/g)]).map((m) => [m[1]!, m[2]!] as const)
  for (const [src, dst] of copies) cpSync(join(ROOT, src), join(out, dst), { recursive: true })
  const lua = join(out, 'worker/storage/redis/lua')
  t.same(['lib', ...SCRIPT_NAMES].filter((n) => !existsSync(join(lua, `${n}.lua`))), [], 'every Lua script is in the image\'s dist/')
})

interface ComposeService {
  image?: string
  build?: { context: string; dockerfile: string }
  command?: string[]
  volumes?: string[]
  environment?: Record<string, string>
  read_only?: boolean
  healthcheck?: unknown
  ports?: string[]
}

t.test('compose: Missive, Redis with the durable config, Prometheus with the rules, Grafana with the dashboard', async (t) => {
  const compose = parseYaml(read('compose.yaml')) as { services: Record<string, ComposeService> }
  const s = compose.services
  t.same(Object.keys(s).sort(), ['grafana', 'missive', 'prometheus', 'redis'])
  for (const [name, svc] of Object.entries(s)) {
    for (const v of svc.volumes ?? []) {
      const host = v.split(':')[0]!
      if (host.startsWith('.')) t.ok(existsSync(resolve(DEPLOY, host)), `${name}: ${host} exists`)
    }
  }
  const mounted = (svc: ComposeService, target: string): string | undefined => svc.volumes?.find((v) => v.split(':')[1] === target)?.split(':')[0]
  const redisConf = mounted(s.redis!, s.redis!.command![1]!)
  t.equal(redisConf, './redis/redis-durable.conf', 'Redis runs the shipped durable configuration')
  t.match(read('redis/redis-durable.conf'), /^appendfsync always$/m)
  t.notOk(s.redis!.command!.some((a) => /appendfsync|appendonly/.test(a)), 'and does not override its persistence')
  t.match(s.missive!.environment!.MISSIVE_DEFAULT_POOL, /^redis:\/\/redis:6379\/\d+\?durability=durable$/)
  t.equal(s.missive!.read_only, true, 'read-only root file system')
  t.same(s.missive!.build, { context: '..', dockerfile: 'deploy/Dockerfile' })
  t.equal(mounted(s.grafana!, '/var/lib/grafana/dashboards/missive-dashboard.json'), './grafana/missive-dashboard.json', 'the shipped dashboard')
  t.equal(mounted(s.prometheus!, '/etc/prometheus/alerts.yml'), './prometheus/alerts.yml', 'the shipped rules')

  const prom = parseYaml(read('compose/prometheus.yml')) as { rule_files: string[]; scrape_configs: { static_configs: { targets: string[] }[] }[] }
  t.same(prom.rule_files, ['alerts.yml'])
  t.same(prom.scrape_configs[0]!.static_configs[0]!.targets, [`missive:${s.missive!.environment!.MISSIVE_ADMIN_PORT}`], 'scrapes the admin port, where /metrics is')
  t.equal(s.missive!.environment!.MISSIVE_METRICS_ON_API_PORT, 'false')
  // promtool reads the rules relative to the config, as Prometheus will inside the container.
  const dir = await tempDir(t)
  copyFileSync(join(DEPLOY, 'compose/prometheus.yml'), join(dir, 'prometheus.yml'))
  copyFileSync(join(DEPLOY, 'prometheus/alerts.yml'), join(dir, 'alerts.yml'))
  const check = await exitOf('promtool', ['check', 'config', join(dir, 'prometheus.yml')])
  t.equal(check.code, 0, `promtool check config: ${check.out}`)
})

interface K8sDoc {
  kind: string
  metadata: { name: string; labels?: Record<string, string> }
  spec: Record<string, unknown>
}
interface Probe {
  httpGet: { path: string; port: string; httpHeaders?: { name: string; value: string }[] }
}

t.test('Kubernetes: probes, resources, security context, a PodDisruptionBudget; the probes work', async (t) => {
  const docs = parseAllDocuments(read('kubernetes/missive.yaml')).map((d) => d.toJS() as K8sDoc).filter((d) => d !== null)
  const byKind = (k: string): K8sDoc[] => docs.filter((d) => d.kind === k)
  const deploy = byKind('Deployment')[0]!
  const template = deploy.spec.template as { metadata: { labels: Record<string, string> }; spec: { securityContext: Record<string, unknown>; containers: Record<string, unknown>[] } }
  const c = template.spec.containers[0]! as {
    ports: { name: string; containerPort: number }[]
    readinessProbe: Probe
    livenessProbe: Probe
    startupProbe: Probe
    resources: { requests: Record<string, string>; limits: Record<string, string> }
    securityContext: Record<string, unknown>
    env: { name: string; value?: string }[]
  }
  t.ok(c.readinessProbe && c.livenessProbe && c.startupProbe, 'readiness, liveness and startup probes')
  t.ok(c.resources.requests.cpu && c.resources.requests.memory && c.resources.limits.cpu && c.resources.limits.memory, 'requests and limits')
  t.equal(c.securityContext.readOnlyRootFilesystem, true)
  t.equal(c.securityContext.allowPrivilegeEscalation, false)
  t.equal(template.spec.securityContext.runAsNonRoot, true)
  t.equal(template.spec.securityContext.runAsUser, 10001, 'the image\'s user (deploy/Dockerfile)')
  t.match(read('Dockerfile'), /useradd --system --uid 10001/)
  const pdb = byKind('PodDisruptionBudget')[0]!
  t.same((pdb.spec.selector as { matchLabels: Record<string, string> }).matchLabels, (deploy.spec.selector as { matchLabels: Record<string, string> }).matchLabels, 'the PDB selects the pods')
  t.match(template.metadata.labels, (deploy.spec.selector as { matchLabels: Record<string, string> }).matchLabels)
  const portNames = c.ports.map((p) => p.name)
  for (const svc of byKind('Service')) {
    for (const p of (svc.spec.ports as { targetPort: string }[])) t.ok(portNames.includes(p.targetPort), `${svc.metadata.name} targets a named port of the container`)
  }
  for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe]) t.ok(portNames.includes(probe.httpGet.port), 'probe on a named port')

  // The kubelet's requests, as the manifest writes them, against a real service.
  const m = await startMissive(t)
  const kubelet = async (p: Probe): Promise<number> => {
    const headers: Record<string, string> = {}
    for (const h of p.httpGet.httpHeaders ?? []) headers[h.name] = h.value
    return (await fetch(m.baseUrl + p.httpGet.path, { headers, redirect: 'manual' })).status
  }
  t.equal(await kubelet(c.readinessProbe), 204, 'readiness: /v2/ping with its headers is 204')
  const bare = await fetch(`${m.baseUrl}${c.readinessProbe.httpGet.path}`)
  t.equal(bare.status, 400, '(without the headers ping would be 400: the headers are needed)')
  for (const p of [c.livenessProbe, c.startupProbe]) {
    const status = await kubelet(p)
    t.ok(status >= 200 && status < 400, `liveness/startup ${p.httpGet.path} → ${status}, a success for the kubelet`)
  }
})
