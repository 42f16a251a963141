/**
 * Every manifest in deploy/kubernetes/ validated against the Kubernetes API's own schemas
 * (docs/deploy.md, "Kubernetes"): `kubernetes-models` ships the JSON Schemas of each built-in
 * kind, generated from Kubernetes' OpenAPI document and compiled with ajv, one model per
 * apiVersion/kind. A document of a kind it does not know fails, rather than passing unchecked.
 *
 * The same validator is shown to reject broken copies of the shipped manifests (a wrong type, a
 * missing required field, an unknown apiVersion), so a pass means something.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { ROOT } from '../helpers/index.js'

const DIR = join(ROOT, 'deploy', 'kubernetes')

interface K8sObject {
  apiVersion: string
  kind: string
  metadata?: { name?: string }
  spec?: Record<string, unknown>
}
type Model = new (data: unknown) => { validate(): void }

/** The model class for an object's apiVersion and kind, or an error naming what is missing. */
async function modelOf(o: K8sObject): Promise<Model> {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion]
  const path = group === '' ? `kubernetes-models/${version}/${o.kind}` : `kubernetes-models/${group}/${version}/${o.kind}`
  let mod: Record<string, unknown>
  try {
    mod = (await import(path)) as Record<string, unknown>
  } catch {
    throw new Error(`no Kubernetes schema for ${o.apiVersion} ${o.kind} (kubernetes-models has no ${path})`)
  }
  const model = mod[o.kind]
  if (typeof model !== 'function') throw new Error(`kubernetes-models' ${path} exports no ${o.kind}`)
  return model as Model
}

/** The validator's verdict: null when valid, else its message. */
async function verdict(o: K8sObject): Promise<string | null> {
  try {
    new (await modelOf(o))(o).validate()
    return null
  } catch (err) {
    return (err as Error).message
  }
}

const files = readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f))
const docsOf = (f: string): K8sObject[] =>
  parseAllDocuments(readFileSync(join(DIR, f), 'utf8'))
    .map((d) => d.toJS() as K8sObject | null)
    .filter((d): d is K8sObject => d !== null)

t.test('every manifest validates against the Kubernetes schemas', async (t) => {
  t.ok(files.length > 0, 'deploy/kubernetes holds manifests')
  let count = 0
  for (const f of files) {
    for (const o of docsOf(f)) {
      count++
      t.equal(await verdict(o), null, `${f}: ${o.kind} ${o.metadata?.name ?? ''} is valid`)
    }
  }
  t.ok(count >= 4, `${count} objects checked (Deployment, two Services, PodDisruptionBudget)`)
})

t.test('the validator rejects broken copies of the shipped manifests', async (t) => {
  const docs = files.flatMap(docsOf)
  const deployment = docs.find((d) => d.kind === 'Deployment')!
  const pdb = docs.find((d) => d.kind === 'PodDisruptionBudget')!
  const service = docs.find((d) => d.kind === 'Service')!

  const replicas = structuredClone(deployment)
  replicas.spec!.replicas = 'two'
  t.match(await verdict(replicas), /replicas/, 'replicas must be an integer')

  const noSelector = structuredClone(deployment)
  delete noSelector.spec!.selector
  t.match(await verdict(noSelector), /selector/, 'a Deployment needs a selector')

  const noImage = structuredClone(deployment)
  const containers = (noImage.spec!.template as { spec: { containers: Record<string, unknown>[] } }).spec.containers
  delete containers[0]!.name
  t.match(await verdict(noImage), /name/, 'a container needs a name')

  const probe = structuredClone(deployment)
  const c0 = (probe.spec!.template as { spec: { containers: { readinessProbe: { periodSeconds: unknown } }[] } }).spec.containers[0]!
  c0.readinessProbe.periodSeconds = '10s'
  t.match(await verdict(probe), /periodSeconds/, 'probe periods are integers')

  const budget = structuredClone(pdb)
  budget.spec!.minAvailable = { one: 1 }
  t.not(await verdict(budget), null, 'minAvailable is an integer or a percentage string')

  const port = structuredClone(service)
  ;(port.spec!.ports as Record<string, unknown>[])[0]!.port = 'http'
  t.match(await verdict(port), /port/, 'a Service port is a number')

  t.match(await verdict({ ...deployment, apiVersion: 'apps/v1beta9' }), /no Kubernetes schema/, 'an unknown apiVersion fails')
})
