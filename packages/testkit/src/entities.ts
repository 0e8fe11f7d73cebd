/**
 * Entities the raw-frame tests create through a TestController (no network builder): an
 * enrolled identity, and the usual pair of service policies.
 */
import type { IdentityFile } from '@nullport/protocol'
import { enroll } from '@nullport/sdk'
import type { TestController } from './controller.js'

/** Creates an identity through the management API and enrolls it (no file written); resolves to the identity file. */
export async function enrollIdentity(
  c: TestController,
  name: string,
  roleAttributes: string[] = [],
): Promise<IdentityFile> {
  const d = await c.data<{ enrollment: { jwt: string } }>('POST', 'identities', {
    name,
    type: 'Device',
    roleAttributes,
  })
  return (await enroll({ jwt: d.enrollment.jwt })).file
}

/** Creates the service policies `dial-SERVICE` (Dial for `#dialers`) and `bind-SERVICE` (Bind for `#hosts`). */
export async function dialBindPolicies(c: TestController, service: string): Promise<void> {
  for (const [type, role] of [
    ['Dial', '#dialers'],
    ['Bind', '#hosts'],
  ] as const) {
    await c.data('POST', 'service-policies', {
      name: `${type.toLowerCase()}-${service}`,
      type,
      semantic: 'AnyOf',
      identityRoles: [role],
      serviceRoles: [`@${service}`],
    })
  }
}
