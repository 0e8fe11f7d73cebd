/** Usage errors of the edge commands: one line, in the CLI's `nullport: CODE: message` format. */
import type { Command } from 'commander'
import { CliError } from '../../errors.js'
import { findKind } from './kinds.js'

/** Makes commander's own errors (missing argument, unknown option...) one line in our format. */
export function oneLineUsageErrors(cmd: Command): void {
  const path: string[] = []
  for (let c: Command | null = cmd; c; c = c.parent) path.unshift(c.name())
  const full = path.join(' ')
  cmd.showHelpAfterError(false)
  cmd.configureOutput({
    outputError: (str, write) =>
      write(
        `nullport: ERR_CLI_USAGE: ${str
          .replace(/^error: /, '')
          .trim()
          .replace(/\s*\n\s*/g, ' ')}: see \`${full} --help\`\n`,
      ),
  })
  for (const sub of cmd.commands) oneLineUsageErrors(sub)
}

/** An action for a group (`create`, `update`...): a kind it does not know is a one-line error. */
export function unknownKindAction(group: Command, writable: boolean): void {
  group
    .argument('[kind]')
    .allowUnknownOption()
    .allowExcessArguments()
    .action((k: string | undefined) => {
      if (k === undefined) {
        throw new CliError(
          'ERR_CLI_USAGE',
          `\`nullport edge ${group.name()}\` needs an entity type: one of ${group.commands.map((c) => c.name()).join(', ')}`,
        )
      }
      if (writable) findKind(k, { writable: true })
      throw new CliError(
        'ERR_CLI_UNKNOWN_KIND',
        `unknown entity type "${k}" for ${group.name()}: use one of ${group.commands.map((c) => c.name()).join(', ')}`,
        { kind: k },
      )
    })
}
