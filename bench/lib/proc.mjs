// Child processes for the bench: spawn, wait for a ready line, kill everything on exit (also on
// failure), and read CPU time and RSS of processes (and their descendants) from /proc.
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

const children = new Set()
let hooked = false

function killAll(signal = 'SIGKILL') {
  const live = [...children].filter((c) => c.exitCode === null && c.signalCode === null)
  // descendants too (nginx workers), found before the parents go
  const pids = withDescendants(live.map((c) => c.pid))
  for (const pid of pids) {
    try {
      process.kill(pid, signal)
    } catch {}
  }
}

function hook() {
  if (hooked) return
  hooked = true
  process.on('exit', () => killAll('SIGKILL'))
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      killAll('SIGKILL')
      process.exit(130)
    })
  }
}

/**
 * Spawns `cmd args`, collects stdout lines, and resolves once `ready(lineObjectOrString)` returns a
 * truthy value (JSON lines are parsed). Rejects on exit or after `timeoutMs`.
 */
export function start(name, cmd, args, opts = {}) {
  hook()
  const child = spawn(cmd, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
  })
  children.add(child)
  child.once('exit', () => children.delete(child))
  const lines = []
  let stderr = ''
  let buf = ''
  const listeners = new Set()
  child.stdout.setEncoding('utf8').on('data', (d) => {
    buf += d
    let i = buf.indexOf('\n')
    while (i >= 0) {
      const raw = buf.slice(0, i)
      buf = buf.slice(i + 1)
      let line = raw
      try {
        line = JSON.parse(raw)
      } catch {}
      if (lines.length < 2000) lines.push(line)
      for (const l of listeners) l(line)
      i = buf.indexOf('\n')
    }
  })
  child.stderr.setEncoding('utf8').on('data', (d) => {
    stderr = (stderr + d).slice(-16_000)
  })
  const exited = new Promise((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig)))
  const p = {
    name,
    child,
    pid: child.pid,
    lines,
    get stderr() {
      return stderr
    },
    /** Resolves with the first (past or future) line for which pred is truthy. */
    waitLine(pred, timeoutMs = 30_000) {
      for (const l of lines) if (pred(l)) return Promise.resolve(l)
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          listeners.delete(on)
          reject(
            new Error(
              `${name}: no expected line within ${timeoutMs} ms\nstderr: ${stderr}\nstdout: ${lines
                .slice(-20)
                .map((l) => JSON.stringify(l))
                .join('\n')}`,
            ),
          )
        }, timeoutMs)
        const on = (l) => {
          if (!pred(l)) return
          clearTimeout(t)
          listeners.delete(on)
          resolve(l)
        }
        listeners.add(on)
        exited.then((code) => {
          if (!listeners.has(on)) return
          clearTimeout(t)
          listeners.delete(on)
          reject(
            new Error(
              `${name} exited (${code}) before the expected line\nstderr: ${stderr}\nstdout: ${lines
                .slice(-20)
                .map((l) => JSON.stringify(l))
                .join('\n')}`,
            ),
          )
        })
      })
    },
    exited,
    async stop(signal = 'SIGTERM', graceMs = 8000) {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill(signal)
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs)
      await exited
      clearTimeout(t)
    },
  }
  return p
}

/** Registers an already spawned/forked ChildProcess for cleanup on exit. */
export function track(child) {
  hook()
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

export function killAllChildren() {
  killAll('SIGKILL')
}

const TICK = 100 // USER_HZ on Linux

/** { cpu: seconds (utime+stime), rssKiB } of one pid, or null when gone. */
export function procStat(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ')
    // rest[0] is field 3 (state); utime = field 14, stime = field 15, rss (pages) = field 24
    const utime = Number(rest[11])
    const stime = Number(rest[12])
    const ppid = Number(rest[1])
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const m = /VmRSS:\s+(\d+) kB/.exec(status)
    return { pid, ppid, cpu: (utime + stime) / TICK, rssKiB: m ? Number(m[1]) : 0 }
  } catch {
    return null
  }
}

/** pids plus all their descendants (nginx workers, haproxy threads are in the same pid). */
export function withDescendants(pids) {
  const all = new Set(pids.filter(Boolean))
  let parents
  try {
    parents = readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .map((d) => {
        try {
          const s = readFileSync(`/proc/${d}/stat`, 'utf8')
          return [Number(d), Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1])]
        } catch {
          return null
        }
      })
      .filter(Boolean)
  } catch {
    return [...all]
  }
  for (let round = 0; round < 5; round++) {
    let added = false
    for (const [pid, ppid] of parents) {
      if (all.has(ppid) && !all.has(pid)) {
        all.add(pid)
        added = true
      }
    }
    if (!added) break
  }
  return [...all]
}

/** Sum of CPU seconds of `procs` ({name, pid}) and their descendants; per-name detail. */
export function cpuSnapshot(procs) {
  const out = {}
  for (const p of procs) {
    let cpu = 0
    for (const pid of withDescendants([p.pid])) cpu += procStat(pid)?.cpu ?? 0
    out[p.name] = cpu
  }
  return out
}

/** RSS KiB per named process (with descendants summed). */
export function rssSnapshot(procs) {
  const out = {}
  for (const p of procs) {
    let rss = 0
    for (const pid of withDescendants([p.pid])) rss += procStat(pid)?.rssKiB ?? 0
    out[p.name] = rss
  }
  return out
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
