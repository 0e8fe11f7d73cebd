/** Data-plane framing. OWNER: protocol helper. Types in ./types.ts are the contract. */

export * from './codec.js'
export * from './connection.js'
export * from './types.js'
export * from './validate.js'
