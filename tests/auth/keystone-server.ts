/**
 * A real Keystone (Debian's `keystone` package) for the tests: a SQLite database and Fernet keys
 * in a temp dir, bootstrapped with `keystone-manage`, served by `keystone-wsgi-public` under uwsgi
 * on a free loopback port, stopped by pid in teardown. Then, through Keystone's own API: a
 * `service` project and role, a service user, projects alpha and beta, and their users.
 */
import { spawn } from 'node:child_process'
import http from 'node:http'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { capture, exited, freePort, hasBinary, runTool } from '../../perf/lib/procs.js'
import { tempDir, waitFor, within, type Teardown } from '../helpers/index.js'

export interface Keystone {
  url: string
  /** Project ids by name (`alpha`, `beta`, `service`, `admin`). */
  projects: Record<string, string>
  /** The service user's credentials, as `auth.keystone` takes them. */
  service: { username: string; password: string; projectName: string }
  /** A project-scoped token for `user` (alice: member of alpha; bob: member of beta; carol: admin of alpha). */
  token(user: string, project: string): Promise<string>
  /** An unscoped token for `user`. */
  unscoped(user: string): Promise<string>
  /** A token for `user` in `project` that Keystone says expires in `seconds` (an application credential's expiry caps it). */
  shortLived(user: string, project: string, seconds: number): Promise<string>
  /** Revokes `token` in Keystone. */
  revoke(token: string): Promise<void>
  /** Stops Keystone (SIGTERM): it no longer answers. */
  stop(): Promise<void>
}

/** True when Keystone and uwsgi are installed (scripts/system-packages.txt). */
export const hasKeystone = (): boolean => hasBinary('keystone-manage', ['--version']) && hasBinary('uwsgi', ['--version'])

export const PASSWORD = 'test-password'

interface Answer {
  status: number
  headers: { get(name: string): string | null }
  text(): Promise<string>
  json(): Promise<unknown>
}

/**
 * One HTTP exchange on a fresh connection (no keep-alive): uwsgi closes idle HTTP/1.1 connections
 * on its own schedule, and a client reusing one gets "other side closed" on a request that was
 * never served — a property of the test server, not of what is tested.
 */
function fetch(url: string, init: { method?: string; headers?: Record<string, string>; body?: string; signal?: AbortSignal } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: init.method ?? 'GET', headers: init.headers, agent: false, signal: init.signal }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', reject)
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        resolve({
          status: res.statusCode ?? 0,
          headers: { get: (n) => (res.headers[n.toLowerCase()] as string | undefined) ?? null },
          text: async () => text,
          json: async () => JSON.parse(text) as unknown,
        })
      })
    })
    req.on('error', reject)
    req.end(init.body)
  })
}

export async function startKeystone(t: Teardown): Promise<Keystone> {
  if (!hasKeystone()) throw new Error('keystone is not installed (apt-get install keystone): the keystone tests need a real Keystone')
  const dir = await tempDir(t, 'missive-ks-')
  const conf = join(dir, 'keystone.conf')
  writeFileSync(
    conf,
    `[DEFAULT]\nlog_file = ${dir}/keystone.log\n[database]\nconnection = sqlite:///${dir}/keystone.db\n` +
      `[token]\nprovider = fernet\nexpiration = 3600\n[fernet_tokens]\nkey_repository = ${dir}/fernet\n` +
      `[fernet_receipts]\nkey_repository = ${dir}/fernet\n[credential]\nkey_repository = ${dir}/credential\n`,
  )
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const manage = async (...args: string[]): Promise<void> => {
    const r = await runTool('keystone-manage', ['--config-file', conf, ...args], 180_000)
    // keystone-manage prints eventlet noise at exit; the exit code is what counts.
    if (r.code !== 0) throw new Error(`keystone-manage ${args[0]} exited ${r.code}:\n${r.stderr.slice(-2000)}`)
  }
  await manage('db_sync')
  await manage('fernet_setup', '--keystone-user', 'root', '--keystone-group', 'root')
  await manage('credential_setup', '--keystone-user', 'root', '--keystone-group', 'root')
  await manage('bootstrap', '--bootstrap-password', PASSWORD, '--bootstrap-public-url', `${url}/v3/`, '--bootstrap-region-id', 'RegionOne')

  const child = spawn(
    'uwsgi',
    ['--plugin', 'python3', '--http11-socket', `127.0.0.1:${port}`, '--wsgi-file', '/usr/bin/keystone-wsgi-public', '--processes', '1', '--threads', '1', '--die-on-term'],
    { env: { ...process.env, NODE_OPTIONS: undefined, OS_KEYSTONE_CONFIG_FILES: conf }, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  const output = capture(child, 32 * 1024)
  const exit = exited(child)
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    if ((await within(exit, 10_000)) === null) {
      child.kill('SIGKILL')
      await exit
    }
  }
  t.teardown(stop)
  await waitFor(async () => (await fetch(`${url}/v3`, { signal: AbortSignal.timeout(2000) })).status === 200, {
    timeoutMs: 60_000,
    what: `Keystone on ${url}: ${output().slice(-500)}`,
  })

  try {
    return await populate(url)
  } catch (err) {
    throw new Error(`setting up Keystone failed: ${(err as Error).message}\n${output().slice(-3000)}`, { cause: err })
  }

  async function populate(url: string): Promise<Keystone> {
  const login = async (user: string, scope: Record<string, unknown> | undefined): Promise<string> => {
    const body = { auth: { identity: { methods: ['password'], password: { user: { name: user, domain: { id: 'default' }, password: PASSWORD } } }, ...(scope && { scope }) } }
    const res = await fetch(`${url}/v3/auth/tokens`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    if (res.status !== 201) throw new Error(`Keystone login ${user}: ${res.status} ${await res.text()}`)
    return res.headers.get('x-subject-token')!
  }
  const admin = await login('admin', { project: { name: 'admin', domain: { id: 'default' } } })
  const api = async (method: string, path: string, body?: unknown): Promise<Record<string, { id: string }>> => {
    const res = await fetch(`${url}/v3${path}`, {
      method,
      headers: { 'x-auth-token': admin, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    if (res.status >= 300) throw new Error(`Keystone ${method} ${path}: ${res.status} ${await res.text()}`)
    return res.status === 204 ? {} : ((await res.json()) as Record<string, { id: string }>)
  }
  const projects: Record<string, string> = {}
  for (const name of ['service', 'alpha', 'beta']) projects[name] = (await api('POST', '/projects', { project: { name, domain_id: 'default' } })).project!.id
  const listed = (await api('GET', '/projects?name=admin')) as unknown as { projects: { id: string }[] }
  projects.admin = listed.projects[0]!.id
  const roles: Record<string, string> = {}
  const roleList = (await api('GET', '/roles')) as unknown as { roles: { id: string; name: string }[] }
  for (const r of roleList.roles) roles[r.name] = r.id
  const grants: [string, string, string][] = [
    // The service user validates tokens as Keystone's admin_required allows (the classic setup).
      ['missive', 'service', 'admin'],
    ['alice', 'alpha', 'member'],
    ['bob', 'beta', 'member'],
    ['carol', 'alpha', 'admin'],
  ]
  for (const [user, project, role] of grants) {
    const id = (await api('POST', '/users', { user: { name: user, domain_id: 'default', password: PASSWORD } })).user!.id
    await api('PUT', `/projects/${projects[project]}/users/${id}/roles/${roles[role]}`)
  }
  return {
    url,
    projects,
    service: { username: 'missive', password: PASSWORD, projectName: 'service' },
    token: (user, project) => login(user, { project: { name: project, domain: { id: 'default' } } }),
    unscoped: (user) => login(user, undefined),
    async shortLived(user, project, seconds) {
      const own = await login(user, { project: { name: project, domain: { id: 'default' } } })
      const me = (await (await fetch(`${url}/v3/auth/tokens`, { headers: { 'x-auth-token': own, 'x-subject-token': own } })).json()) as { token: { user: { id: string } } }
      const expires = new Date(Date.now() + seconds * 1000).toISOString()
      const res = await fetch(`${url}/v3/users/${me.token.user.id}/application_credentials`, {
        method: 'POST',
        headers: { 'x-auth-token': own, 'content-type': 'application/json' },
        body: JSON.stringify({ application_credential: { name: `short-${Date.now()}-${Math.random()}`, expires_at: expires } }),
      })
      if (res.status !== 201) throw new Error(`application credential: ${res.status} ${await res.text()}`)
      const cred = ((await res.json()) as { application_credential: { id: string; secret: string } }).application_credential
      const tok = await fetch(`${url}/v3/auth/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ auth: { identity: { methods: ['application_credential'], application_credential: { id: cred.id, secret: cred.secret } } } }),
      })
      if (tok.status !== 201) throw new Error(`application credential login: ${tok.status} ${await tok.text()}`)
      return tok.headers.get('x-subject-token')!
    },
    async revoke(token) {
      const res = await fetch(`${url}/v3/auth/tokens`, { method: 'DELETE', headers: { 'x-auth-token': admin, 'x-subject-token': token } })
      if (res.status !== 204) throw new Error(`revoke: ${res.status}`)
    },
    stop,
  }
  }
}
