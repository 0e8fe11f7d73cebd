/** PolicyImpact: which identities' answers an applied change may alter. */

/**
 * Collects the identities whose answers may change because of applied changes: pass one to
 * `apply(change, impact)` (for a batch, the same one to each call), then notify
 * `impact.all ? everyone : impact.identities`. Answers covered: servicesFor (Dial, Bind),
 * routersForIdentity, routersFor(identity, service), and the data of the services an identity may
 * reach (a service rename or attribute change reaches who may dial or bind it). A superset:
 * never misses an identity (the randomized cross-check proves it), may include a few extra.
 * Terminator changes affect nobody's service list.
 */
export class PolicyImpact {
  /** Every identity may be affected (a `#all` role was involved, or too many to list). */
  all = false
  readonly identities = new Set<string>()

  markAll(): void {
    this.all = true
    this.identities.clear()
  }

  add(identityId: string): void {
    if (!this.all) this.identities.add(identityId)
  }

  has(identityId: string): boolean {
    return this.all || this.identities.has(identityId)
  }
}

/** Above this many services touched by one service edge router policy, the impact is "everyone". */
export const IMPACT_MAX_SERVICES = 1000
