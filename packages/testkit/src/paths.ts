/**
 * Where things are in the repository. The test kit runs from packages/testkit/dist/src and
 * starts the CLI as a process, so it finds the CLI by its place in the repository rather than
 * by importing it (the CLI depends on everything, the test kit must not depend on the CLI).
 */
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository root, with a trailing slash. */
export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url))

/** The committed `nullport` launcher; the CLI must be built (`npm run build`). */
export const CLI_BIN = join(REPO_ROOT, 'packages/cli/bin/nullport.js')
