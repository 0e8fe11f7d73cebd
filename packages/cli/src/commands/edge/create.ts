/** `nullport edge create KIND ...`: one command per kind, registered from KIND_FIELDS. */
import type { Command } from 'commander'
import { CliError } from '../../errors.js'
import { api } from './api.js'
import {
  buildBody,
  CREATE_ORDER,
  commandInputs,
  fieldOption,
  KIND_FIELDS,
  type KindFields,
} from './fields.js'
import { findKind, type KindInfo, type Row } from './kinds.js'
import { out, printJson, writeJwt } from './output.js'
import { unknownKindAction } from './usage.js'

interface Created {
  id?: string
  name?: string
  enrollment?: { jwt?: string; expiresAt?: string }
}

/** Registers `edge create` and its per-kind commands. */
export function registerCreate(edge: Command): void {
  const create = edge.command('create').description('create an entity')
  for (const name of CREATE_ORDER) createCommand(create, KIND_FIELDS.find((k) => k.kind === name)!)
  unknownKindAction(create, true)
}

function createCommand(group: Command, k: KindFields): void {
  const cmd = group.command(k.kind).description(k.create.description)
  for (const [arg, help] of k.create.args) cmd.argument(arg, help)
  for (const f of k.fields) {
    const opt = fieldOption(f, 'create')
    if (opt) cmd.addOption(opt)
  }
  cmd.option('--json', `print the created ${k.noun} as JSON`)
  cmd.action(async () => {
    const inputs = commandInputs(k, 'create', cmd)
    const { given, o } = inputs
    const first = k.create.positional ? k.create.positional(given) : { name: given[0]!, body: {} as Row }
    k.create.check?.(o)
    const { body, roles } = await buildBody(k, 'create', inputs)
    await doCreate(
      findKind(k.kind),
      { name: first.name, ...first.body, ...body },
      { json: o.json as boolean | undefined, output: o.jwtOutputFile as string | undefined },
      roles,
    )
  })
}

async function doCreate(
  kind: KindInfo,
  body: Row,
  o: { json?: boolean; output?: string },
  roles: Record<string, string[]>,
): Promise<void> {
  const r = await api<Created>('POST', `/${kind.plural}`, { body }, { kind, name: String(body.name), roles })
  const d = r.data ?? {}
  if (o.output) {
    const jwt = d.enrollment?.jwt
    if (typeof jwt !== 'string')
      throw new CliError(
        'ERR_CLI_BAD_RESPONSE',
        `the controller returned no enrollment token for ${kind.label} ${body.name}`,
      )
    await writeJwt(o.output, jwt)
  }
  if (o.json) {
    printJson(d)
    return
  }
  out(`New ${kind.label} ${body.name} created, id: ${d.id}`)
  if (o.output)
    out(
      `enrollment token written to ${o.output}${d.enrollment?.expiresAt ? ` (expires at ${d.enrollment.expiresAt})` : ''}`,
    )
}
