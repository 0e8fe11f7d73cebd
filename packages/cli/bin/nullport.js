#!/usr/bin/env node
// Committed launcher so npm can link the `nullport` bin before the TypeScript build exists.

// Opt-in (NULLPORT_GC_TUNING=on): forwarding commands keep V8's young generation small, before
// anything else allocates, so the Buffers of every TLS read die in cheap scavenges instead of
// driving full mark-compacts. Faster bulk transfers, but it stalled a process holding thousands
// of circuits, hence off by default (@nullport/protocol gc.ts).
const [command, sub] = process.argv.slice(2)
if (
  (command === 'router' && sub === 'run') ||
  (command === 'tunnel' && (sub === 'run' || sub === 'proxy')) ||
  command === 'quickstart'
) {
  try {
    const gc = await import('@nullport/protocol/gc')
    if (gc.gcTuningRequested()) gc.tuneGcForThroughput()
  } catch (err) {
    // not built yet: the import below says so
    if (!err || err.code !== 'ERR_MODULE_NOT_FOUND') throw err
  }
}

import('../dist/src/bin.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/src/bin.js')) {
    process.stderr.write('nullport: the CLI is not built yet: run `npm run build` at the repository root\n')
    process.exitCode = 1
    return
  }
  throw err
})
