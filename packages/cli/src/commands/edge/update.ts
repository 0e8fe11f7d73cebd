/** `nullport edge update KIND NAME ...`: one command per kind, registered from KIND_FIELDS; only the options given change. */
import type { Command } from 'commander'
import { CliError } from '../../errors.js'
import { api, enc } from './api.js'
import { buildBody, commandInputs, fieldOption, KIND_FIELDS, type KindFields } from './fields.js'
import { findKind, type KindInfo, type Row } from './kinds.js'
import { out, printJson } from './output.js'
import { unknownKindAction } from './usage.js'

/** Registers `edge update` and its per-kind commands. */
export function registerUpdate(edge: Command): void {
  const update = edge.command('update').description('change an entity (only the options given)')
  for (const k of KIND_FIELDS) updateCommand(update, k)
  unknownKindAction(update, true)
}

function updateCommand(group: Command, k: KindFields): void {
  const cmd = group.command(k.kind)
  for (const [arg, help] of k.update.args) cmd.argument(arg, help)
  for (const f of k.fields) {
    const opt = fieldOption(f, 'update')
    if (opt) cmd.addOption(opt)
  }
  cmd.option('--name <new-name>', 'rename').option('--json', 'print the updated entity as JSON')
  cmd.action(async () => {
    const inputs = commandInputs(k, 'update', cmd)
    const { given, o } = inputs
    const name = given[0]!
    const { body, roles } = await buildBody(k, 'update', inputs)
    const rename: Row = o.name !== undefined ? { name: o.name } : {}
    await doUpdate(
      findKind(k.kind),
      name,
      { ...rename, ...body },
      { json: o.json as boolean | undefined },
      roles,
    )
  })
}

async function doUpdate(
  kind: KindInfo,
  name: string,
  body: Row,
  o: { json?: boolean },
  roles: Record<string, string[]>,
): Promise<void> {
  if (Object.keys(body).length === 0) {
    throw new CliError(
      'ERR_CLI_USAGE',
      `nothing to update for ${kind.label} ${name}: give at least one option (see \`nullport edge update ${kind.name} --help\`)`,
    )
  }
  const r = await api<Row>('PATCH', `/${kind.plural}/${enc(name)}`, { body }, { kind, name, roles })
  if (o.json) printJson(r.data ?? {})
  else out(`${kind.label} ${name} updated`)
}
