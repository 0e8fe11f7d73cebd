/** Subject alternative names: validation of DNS/IP/URI SANs, the extension, reading it back. */
import './reflect-metadata.js'
import { isIP } from 'node:net'
import * as x509 from '@peculiar/x509'
import { invalid } from './internal.js'

const DNS_LABEL = '[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?'
const DNS_RE = new RegExp(`^(?:\\*\\.)?${DNS_LABEL}(?:\\.${DNS_LABEL})*$`)

/** True when `name` is a valid DNS SAN (letters, digits, `-`, `_`, dots; an optional leading `*.`). */
export function isValidDnsName(name: string): boolean {
  return typeof name === 'string' && name.length <= 253 && DNS_RE.test(name)
}

export interface Sans {
  dns: string[]
  ip: string[]
  uris: string[]
}

export function checkSans(o: {
  dns?: string[] | undefined
  ip?: string[] | undefined
  uris?: string[] | undefined
}): Sans {
  const list = (v: unknown, field: string): string[] => {
    if (v === undefined) return []
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string'))
      invalid(`${field} must be an array of strings`, { field })
    return [...new Set(v as string[])]
  }
  const dns = list(o.dns, 'dns')
  const ip = list(o.ip, 'ip')
  const uris = list(o.uris, 'uris')
  for (const d of dns)
    if (!isValidDnsName(d)) invalid(`dns: "${d}" is not a valid DNS name`, { field: 'dns', value: d })
  for (const a of ip)
    if (isIP(a) === 0) invalid(`ip: "${a}" is not an IPv4 or IPv6 address`, { field: 'ip', value: a })
  for (const u of uris) {
    let ok = /^[\x21-\x7e]+$/.test(u)
    if (ok) {
      try {
        ok = new URL(u).protocol.length > 1
      } catch {
        ok = false
      }
    }
    if (!ok) invalid(`uris: "${u}" is not an absolute ASCII URI`, { field: 'uris', value: u })
  }
  if (uris.filter((u) => u.startsWith('spiffe:')).length > 1) {
    invalid('uris: a certificate carries at most one spiffe:// URI', { field: 'uris' })
  }
  return { dns, ip, uris }
}

export function sanExtension(s: Sans): x509.SubjectAlternativeNameExtension | null {
  const names: x509.JsonGeneralNames = [
    ...s.dns.map((value) => ({ type: 'dns' as const, value })),
    ...s.ip.map((value) => ({ type: 'ip' as const, value })),
    ...s.uris.map((value) => ({ type: 'url' as const, value })),
  ]
  return names.length === 0 ? null : new x509.SubjectAlternativeNameExtension(names, false)
}

export function readSans(ext: x509.Extension | null): Sans {
  const out: Sans = { dns: [], ip: [], uris: [] }
  if (!ext) return out
  const san =
    ext instanceof x509.SubjectAlternativeNameExtension
      ? ext
      : new x509.SubjectAlternativeNameExtension(ext.rawData)
  for (const n of san.names.toJSON()) {
    if (n.type === 'dns') out.dns.push(n.value)
    else if (n.type === 'ip') out.ip.push(n.value)
    else if (n.type === 'url') out.uris.push(n.value)
  }
  return out
}
