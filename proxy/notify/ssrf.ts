/**
 * Subscribers are URLs a tenant chooses: without a guard, the notifier would POST into the
 * operator's own network (the admin port on loopback, a cloud metadata service, a database's
 * HTTP port). Loopback, private, link-local, shared (CGNAT), unspecified and multicast addresses
 * are refused unless `notification.allow_hosts` lists the host name, the address or a CIDR
 * holding it (docs/notifications.md, "Addresses a subscriber may not use"). Checked twice: at
 * creation for literal addresses and `localhost`, and at connect time on the addresses the name
 * resolved to — the connection goes to the address checked, so DNS rebinding gains nothing.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { BlockList, isIP } from 'node:net'

const FORBIDDEN = new BlockList()
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  FORBIDDEN.addSubnet(net, prefix, 'ipv4')
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  FORBIDDEN.addSubnet(net, prefix, 'ipv6')

/** The operator's exceptions: host names, addresses and CIDRs. */
export class AllowList {
  readonly #names = new Set<string>()
  readonly #nets = new BlockList()

  constructor(entries: readonly string[]) {
    for (const e of entries) {
      const [addr, bits] = e.split('/') as [string, string | undefined]
      const family = isIP(addr)
      if (family === 0) this.#names.add(e.toLowerCase())
      else if (bits === undefined) this.#nets.addAddress(addr, family === 4 ? 'ipv4' : 'ipv6')
      else this.#nets.addSubnet(addr, Number(bits), family === 4 ? 'ipv4' : 'ipv6')
    }
  }

  /** True when `host` (as written in the URI) or its address `ip` is allowed. */
  allows(host: string, ip: string | undefined): boolean {
    if (this.#names.has(host.toLowerCase())) return true
    if (ip === undefined) return false
    return this.#nets.check(ip, isIP(ip) === 6 ? 'ipv6' : 'ipv4')
  }
}

/** An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) as the IPv4 address it is. */
const unmapped = (ip: string): string => (/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1] ?? ip)

/** True when `ip` is in a range subscribers may not reach. */
export function forbiddenAddress(ip: string): boolean {
  const a = unmapped(ip)
  const family = isIP(a)
  if (family === 0) return true
  return FORBIDDEN.check(a, family === 4 ? 'ipv4' : 'ipv6')
}

/** The host of an http(s) URI as `URL` parses it, brackets removed. */
export const hostOf = (url: URL): string => url.hostname.replace(/^\[|\]$/g, '')

/** Creation-time check: a literal address or `localhost` that the allow-list does not cover. */
export function refusedAtCreation(subscriber: string, allow: AllowList): boolean {
  if (!/^https?:/i.test(subscriber)) return false
  let url: URL
  try {
    url = new URL(subscriber)
  } catch {
    return false // the scheme check refuses it
  }
  const host = hostOf(url)
  if (isIP(host) !== 0) return forbiddenAddress(host) && !allow.allows(host, unmapped(host))
  const name = host.toLowerCase().replace(/\.$/, '')
  return (name === 'localhost' || name.endsWith('.localhost')) && !allow.allows(host, undefined)
}

/** The error a refused connection fails with (never retried). */
export class ForbiddenAddress extends Error {
  constructor(host: string, ip: string) {
    super(`${host} resolves to ${ip}, an address subscribers may not reach (notification.allow_hosts)`)
    this.name = 'ForbiddenAddress'
  }
}

/**
 * A `lookup` for node:http's request options: resolves as usual, then refuses (with
 * `ForbiddenAddress`) when any address is forbidden and not allowed.
 */
export function guardedLookup(allow: AllowList) {
  return (hostname: string, options: object, callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err !== null) return callback(err, [])
      for (const a of addresses) {
        if (forbiddenAddress(a.address) && !allow.allows(hostname, unmapped(a.address))) return callback(new ForbiddenAddress(hostname, a.address), [])
      }
      if ((options as { all?: boolean }).all === true) return callback(null, addresses)
      const first = addresses[0]
      if (first === undefined) return callback(new Error(`${hostname} has no address`), [])
      callback(null, first.address, first.family)
    })
  }
}
