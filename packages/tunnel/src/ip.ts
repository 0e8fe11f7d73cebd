import { isIPv4, isIPv6 } from 'node:net'

/** An IP address as bytes: 4 for IPv4 (IPv4-mapped IPv6 addresses are folded to IPv4), 16 for IPv6. */
export type IpBytes = Uint8Array

/** Parses an IPv4 or IPv6 literal (brackets and a `%zone` are accepted); null when it is not one. */
export function parseIp(text: string): IpBytes | null {
  let s = text
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1)
  const pct = s.indexOf('%')
  if (pct >= 0) s = s.slice(0, pct)
  if (isIPv4(s)) return Uint8Array.from(s.split('.').map((p) => Number(p)))
  if (!isIPv6(s)) return null
  const out = new Uint8Array(16)
  let head = s
  let tail = ''
  const dbl = s.indexOf('::')
  if (dbl >= 0) {
    head = s.slice(0, dbl)
    tail = s.slice(dbl + 2)
  }
  const groups = (part: string): number[] => {
    if (part === '') return []
    const words: number[] = []
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const v4 = g.split('.').map((p) => Number(p))
        words.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!)
      } else {
        words.push(Number.parseInt(g, 16))
      }
    }
    return words
  }
  const h = groups(head)
  const t = groups(tail)
  const words = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t]
  for (let i = 0; i < 8; i++) {
    out[i * 2] = (words[i]! >> 8) & 0xff
    out[i * 2 + 1] = words[i]! & 0xff
  }
  // ::ffff:a.b.c.d -> a.b.c.d
  if (out.subarray(0, 10).every((b) => b === 0) && out[10] === 0xff && out[11] === 0xff) {
    return out.slice(12)
  }
  return out
}

/** Formats address bytes (4 or 16) as text (IPv6 without zero compression, lower case). */
export function formatIp(b: IpBytes): string {
  if (b.length === 4) return Array.from(b).join('.')
  const words: string[] = []
  for (let i = 0; i < 16; i += 2) words.push(((b[i]! << 8) | b[i + 1]!).toString(16))
  return words.join(':')
}

/** A CIDR block (`10.0.0.0/8`, `fd00::/8`); a plain address is a /32 or /128. */
export interface Cidr {
  bytes: IpBytes
  prefix: number
}

/** Parses `ADDR/PREFIX` or `ADDR`; null when invalid. */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf('/')
  const addr = parseIp(slash >= 0 ? text.slice(0, slash) : text)
  if (!addr) return null
  const max = addr.length * 8
  let prefix = max
  if (slash >= 0) {
    const p = text.slice(slash + 1)
    if (!/^\d{1,3}$/.test(p)) return null
    prefix = Number(p)
    // an IPv4-mapped IPv6 CIDR folded to IPv4: adjust the prefix
    if (addr.length === 4 && isIPv6(text.slice(0, slash))) prefix -= 96
    if (prefix < 0 || prefix > max) return null
  }
  return { bytes: addr, prefix }
}

/** True when `ip` lies in `cidr` (same family only). */
export function cidrContains(cidr: Cidr, ip: IpBytes): boolean {
  if (cidr.bytes.length !== ip.length) return false
  let bits = cidr.prefix
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff
    if ((cidr.bytes[i]! & mask) !== (ip[i]! & mask)) return false
  }
  return true
}
