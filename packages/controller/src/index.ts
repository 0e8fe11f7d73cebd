export {
  CONFIG_FILE_SCHEMA,
  type ControllerConfig,
  type ControllerConfigFile,
  loadConfig,
  parseDuration,
} from './config.js'
export { type ChangeBatch, ChangeFeed, type EntityEvent } from './core/change-feed.js'
export type { ControllerContext, EdgeModule } from './core/context.js'
export { checkSchema, validateJson } from './core/json-schema.js'
export { ENTITY_TYPES, type EntityType } from './core/entities/kind.js'
export { CoreService } from './core/service.js'
export { type Actor, SYSTEM_ACTOR } from './core/write.js'
export * from './errors.js'
export {
  type ContextOptions,
  createContext,
  type RunningController,
  type StartOptions,
  startController,
} from './server.js'
export { type Db, openStore, type Store, type Tx } from './store/db.js'
export type { Database } from './store/schema.js'
