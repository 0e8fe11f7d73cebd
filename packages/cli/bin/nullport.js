#!/usr/bin/env node
// Committed launcher so npm can link the `nullport` bin before the TypeScript build exists.
import('../dist/src/bin.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/src/bin.js')) {
    process.stderr.write('nullport: the CLI is not built yet: run `npm run build` at the repository root\n')
    process.exitCode = 1
    return
  }
  throw err
})
