/**
 * JSON Schemas of the terminator options (protocol's TERMINATOR_STRATEGIES and
 * TERMINATOR_PRECEDENCES, in their order), for the management and fabric APIs.
 */
import { TERMINATOR_PRECEDENCES, TERMINATOR_STRATEGIES } from '@nullport/protocol'
import { Type } from '@sinclair/typebox'

export const Precedence = Type.Union(TERMINATOR_PRECEDENCES.map((p) => Type.Literal(p)))
export const Strategy = Type.Union(TERMINATOR_STRATEGIES.map((s) => Type.Literal(s)))
