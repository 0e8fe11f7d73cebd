// Loaded with `node --import bench/lib/prof-hook.mjs` (or NODE_OPTIONS) into a process under test
// when the bench profiles: SIGUSR2 starts the V8 CPU profiler (the same sampler as --cpu-prof),
// the next SIGUSR2 stops it and writes NULLPORT_BENCH_PROF_DIR/<name>-<pid>.cpuprofile. The
// profile then covers exactly the measured test, not start-up.
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector'
import { join } from 'node:path'

const dir = process.env.NULLPORT_BENCH_PROF_DIR
const name = process.env.NULLPORT_BENCH_PROF_NAME ?? 'node'
if (dir) {
  const session = new Session()
  session.connect()
  let on = false
  const post = (m, p = {}) => new Promise((res, rej) => session.post(m, p, (e, r) => (e ? rej(e) : res(r))))
  process.on('SIGUSR2', async () => {
    try {
      if (!on) {
        on = true
        await post('Profiler.enable')
        await post('Profiler.setSamplingInterval', { interval: 500 })
        await post('Profiler.start')
      } else {
        on = false
        const { profile } = await post('Profiler.stop')
        writeFileSync(join(dir, `${name}-${process.pid}.cpuprofile`), JSON.stringify(profile))
      }
    } catch (err) {
      process.stderr.write(`prof-hook: ${err}\n`)
    }
  })
}
