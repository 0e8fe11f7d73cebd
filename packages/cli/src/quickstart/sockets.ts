/**
 * The TCP sockets this process listens on, read from /proc (Linux): the inodes of
 * /proc/self/fd/* that are sockets, matched against the LISTEN rows (state 0A) of
 * /proc/self/net/tcp and tcp6. Returns null where /proc is not available.
 */
import { readdir, readFile, readlink } from 'node:fs/promises'
import { formatHostPort } from '@nullport/protocol'

export interface ListeningSocket {
  /** `host:port` (IPv6 in brackets). */
  address: string
  port: number
}

function hexToIpv4(hex: string): string {
  // little-endian 32-bit word
  const b = Buffer.from(hex, 'hex')
  return `${b[3]}.${b[2]}.${b[1]}.${b[0]}`
}

function hexToIpv6(hex: string): string {
  // four little-endian 32-bit words
  const b = Buffer.from(hex, 'hex')
  const out = Buffer.alloc(16)
  for (let w = 0; w < 4; w++) for (let i = 0; i < 4; i++) out[w * 4 + i] = b[w * 4 + 3 - i]!
  const words: string[] = []
  for (let i = 0; i < 16; i += 2) words.push(out.readUInt16BE(i).toString(16))
  const v4mapped = words.slice(0, 5).every((x) => x === '0') && words[5] === 'ffff'
  if (v4mapped) return `::ffff:${out[12]}.${out[13]}.${out[14]}.${out[15]}`
  // compress the longest run of zero words
  let best = -1
  let bestLen = 0
  for (let i = 0; i < 8; ) {
    if (words[i] !== '0') {
      i++
      continue
    }
    let j = i
    while (j < 8 && words[j] === '0') j++
    if (j - i > bestLen) {
      best = i
      bestLen = j - i
    }
    i = j
  }
  if (bestLen < 2) return words.join(':')
  return `${words.slice(0, best).join(':')}::${words.slice(best + bestLen).join(':')}`
}

async function listenRows(file: string, v6: boolean): Promise<Map<string, ListeningSocket>> {
  const rows = new Map<string, ListeningSocket>()
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch {
    return rows
  }
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    if (f.length < 10 || f[3] !== '0A') continue
    const [addrHex, portHex] = f[1]!.split(':') as [string, string]
    const port = Number.parseInt(portHex, 16)
    const host = v6 ? hexToIpv6(addrHex) : hexToIpv4(addrHex)
    rows.set(f[9]!, { address: formatHostPort(host, port), port })
  }
  return rows
}

/** The TCP sockets this process listens on, or null when /proc cannot tell (not Linux). */
export async function listeningSockets(): Promise<ListeningSocket[] | null> {
  let fds: string[]
  try {
    fds = await readdir('/proc/self/fd')
  } catch {
    return null
  }
  const inodes = new Set<string>()
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/self/fd/${fd}`))
      if (m) inodes.add(m[1]!)
    } catch {
      // closed meanwhile
    }
  }
  const all = new Map([
    ...(await listenRows('/proc/self/net/tcp', false)),
    ...(await listenRows('/proc/self/net/tcp6', true)),
  ])
  const out: ListeningSocket[] = []
  for (const [inode, s] of all) if (inodes.has(inode)) out.push(s)
  return out.sort((a, b) => a.port - b.port)
}
