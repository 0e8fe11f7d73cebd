/**
 * `nullport edge enroll` (the SDK's enrollment: a key and an identity file from a one-time token)
 * and `nullport edge re-enroll` (the controller issues a new token).
 */
import { enroll } from '@nullport/sdk'
import type { Command } from 'commander'
import { CliError } from '../../errors.js'
import { readEnrollmentToken } from '../../lib/args.js'
import { api, enc } from './api.js'
import { findKind, type Row } from './kinds.js'
import { out, printJson, writeJwt } from './output.js'

/** Registers `edge enroll` and `edge re-enroll`. */
export function registerEnroll(edge: Command): void {
  edge
    .command('enroll')
    .description('enroll with a one-time token: makes a key and writes an identity file (0600)')
    .argument('<jwt-file>', 'the enrollment token file (NAME.jwt)')
    .option('-o, --out <file>', 'identity file to write (default: the token file with .json)')
    .option('--overwrite', 'replace an existing identity file')
    .option('--advertise <host:port>', 'edge routers only: the address it advertises')
    .option('--json', 'print a JSON summary')
    .action(
      async (
        jwtFile: string,
        o: { out?: string; overwrite?: boolean; advertise?: string; json?: boolean },
      ) => {
        const jwt = await readEnrollmentToken(jwtFile)
        const output =
          o.out ?? (jwtFile.endsWith('.jwt') ? `${jwtFile.slice(0, -4)}.json` : `${jwtFile}.json`)
        const r = await enroll({ jwt, output, overwrite: o.overwrite, advertise: o.advertise })
        if (o.json)
          printJson({
            id: r.file.id,
            name: r.file.name,
            kind: r.file.kind,
            controller: r.file.controller,
            path: r.path,
          })
        else out(`enrolled ${r.file.kind} ${r.file.name} (${r.file.id}): identity file written to ${r.path}`)
      },
    )

  edge
    .command('re-enroll')
    .description('issue a new enrollment token (the old token and the current certificate stop working)')
    .argument('<type>', 'identity | edge-router')
    .argument('<name>', 'name or id')
    .option('-o, --jwt-output-file <file>', 'write the new token here (default: print it)')
    .option('--json', 'print the answer as JSON')
    .action(async (type: string, name: string, o: { jwtOutputFile?: string; json?: boolean }) => {
      const k = findKind(type)
      if (k.name !== 'identity' && k.name !== 'edge-router') {
        throw new CliError(
          'ERR_CLI_UNKNOWN_KIND',
          `re-enroll works for identity or edge-router, not "${type}"`,
          { kind: type },
        )
      }
      const r = await api<Row>('POST', `/${k.plural}/${enc(name)}/re-enroll`, { body: {} }, { kind: k, name })
      const d = (r.data ?? {}) as Row
      const e = (d.enrollment ?? d) as { jwt?: unknown; expiresAt?: unknown }
      if (typeof e.jwt !== 'string')
        throw new CliError(
          'ERR_CLI_BAD_RESPONSE',
          `the controller returned no enrollment token for ${k.label} ${name}`,
        )
      if (o.jwtOutputFile) await writeJwt(o.jwtOutputFile, e.jwt)
      if (o.json) printJson(d)
      else if (o.jwtOutputFile)
        out(
          `new enrollment token for ${k.label} ${name} written to ${o.jwtOutputFile}${typeof e.expiresAt === 'string' ? ` (expires at ${e.expiresAt})` : ''}`,
        )
      else out(e.jwt)
    })
}
