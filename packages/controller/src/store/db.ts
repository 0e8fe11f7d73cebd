/**
 * Opens the store: SQLite (better-sqlite3, WAL, foreign keys on) by default, PostgreSQL (pg) when
 * `database` is a postgres:// URL (`?schema=NAME` sets the search_path). Same Kysely query layer.
 */
import { closeSync, mkdirSync, openSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { Backoff } from '@nullport/protocol'
import BetterSqlite3 from 'better-sqlite3'
import { Kysely, PostgresDialect, SqliteDialect, type Transaction } from 'kysely'
import pg from 'pg'
import { ControllerError } from '../errors.js'
import { type Dialect, migrate } from './migrations.js'
import type { Database } from './schema.js'

export type Db = Kysely<Database>
export type Tx = Transaction<Database>

export interface Store {
  db: Db
  dialect: Dialect
  /** Runs `fn` in one transaction: everything it writes commits together or not at all. */
  transaction<T>(fn: (trx: Tx) => Promise<T>): Promise<T>
  /** Runs `fn` in one REPEATABLE READ transaction (a consistent snapshot for reads). */
  snapshotTransaction<T>(fn: (trx: Tx) => Promise<T>): Promise<T>
  close(): Promise<void>
  /** Where the data lives, for logs (never contains a password). */
  describe: string
  /**
   * PostgreSQL only: LISTEN on `channel` with a dedicated connection (reconnects with backoff;
   * `onReconnect` runs after each reconnection so callers can catch up). Closed by close().
   * A per-schema channel name is the caller's job (`channelName`).
   */
  listen?(channel: string, onNotify: (payload: string) => void, onReconnect: () => void): Promise<void>
  /** A channel name unique to this database schema. */
  channelName(base: string): string
}

export interface OpenStoreOptions {
  /** `sqlite` or a postgres:// URL. */
  database: string
  /** For SQLite: the directory that holds controller.db. */
  dataDir: string
  /** Run migrations (default true). */
  migrate?: boolean
}

// PostgreSQL returns bigint (int8) as strings by default; our counters fit in a JS number.
pg.types.setTypeParser(20, (v: string) => Number(v))

/** The mode bits of `path`, or undefined when it does not exist. */
function modeOf(path: string): number | undefined {
  try {
    return statSync(path).mode & 0o777
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/**
 * The data directory is 0700 and the database with its WAL and SHM files 0600: they hold password
 * hashes, session and enrollment token hashes. A directory or file that is wider is refused (the
 * message names the chmod to run), as for private keys. The database file is created 0600 before
 * SQLite opens it: SQLite gives its -wal and -shm files the mode of the database file.
 */
function prepareSqliteFiles(dir: string, file: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const dirMode = modeOf(dir) ?? 0o700
  if ((dirMode & 0o077) !== 0) {
    throw new ControllerError(
      'ERR_DATA_PERMISSIONS',
      `the data directory ${dir} is accessible by group or others (mode ${dirMode.toString(8)}): run \`chmod 700 ${dir}\` and start again`,
      { path: dir, mode: dirMode.toString(8) },
    )
  }
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    const mode = modeOf(f)
    if (mode !== undefined && (mode & 0o077) !== 0) {
      throw new ControllerError(
        'ERR_DATA_PERMISSIONS',
        `${f} is accessible by group or others (mode ${mode.toString(8)}): run \`chmod 600 ${f}\` and start again`,
        { path: f, mode: mode.toString(8) },
      )
    }
  }
  if (modeOf(file) === undefined) closeSync(openSync(file, 'a', 0o600))
}

export async function openStore(o: OpenStoreOptions): Promise<Store> {
  let db: Db
  let dialect: Dialect
  let describe: string
  let pgOptions: pg.ClientConfig | undefined
  let schemaName = 'public'
  if (/^postgres(ql)?:\/\//.test(o.database)) {
    const url = new URL(o.database)
    const schema = url.searchParams.get('schema')
    url.searchParams.delete('schema')
    if (schema !== null && !/^[a-z_][a-z0-9_]*$/.test(schema)) {
      throw new ControllerError(
        'ERR_CONFIG_FILE',
        `database: schema "${schema}" must match [a-z_][a-z0-9_]*`,
        {
          field: 'database',
        },
      )
    }
    pgOptions = {
      connectionString: url.toString(),
      ...(schema ? { options: `-c search_path=${schema}` } : {}),
    }
    if (schema) schemaName = schema
    const pool = new pg.Pool({ ...pgOptions, max: 8 })
    // an idle pooled connection that breaks (server restart, network) must not crash the
    // process: the pool drops it and the next query opens a new one
    pool.on('error', () => {})
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
    dialect = 'postgres'
    describe = `postgres://${url.host}${url.pathname}${schema ? ` schema ${schema}` : ''}`
  } else if (o.database === 'sqlite') {
    const file = join(o.dataDir, 'controller.db')
    prepareSqliteFiles(o.dataDir, file)
    const sqlite = new BetterSqlite3(file)
    sqlite.pragma('journal_mode = WAL')
    sqlite.pragma('foreign_keys = ON')
    sqlite.pragma('synchronous = NORMAL')
    sqlite.pragma('busy_timeout = 5000')
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) })
    dialect = 'sqlite'
    describe = file
  } else {
    throw new ControllerError(
      'ERR_CONFIG_FILE',
      `database: "${o.database}" must be "sqlite" or a postgres:// URL`,
      {
        field: 'database',
      },
    )
  }
  try {
    if (o.migrate !== false) await migrate(db, dialect)
  } catch (err) {
    await db.destroy().catch(() => {})
    throw new ControllerError(
      'ERR_DATABASE',
      `cannot prepare the database (${describe}): ${(err as Error).message}`,
      {},
      { cause: err },
    )
  }
  let closed = false
  const listeners: pg.Client[] = []
  const timers = new Set<NodeJS.Timeout>()
  const store: Store = {
    db,
    dialect,
    describe,
    transaction: (fn) => db.transaction().execute(fn),
    snapshotTransaction: (fn) =>
      dialect === 'postgres'
        ? db.transaction().setIsolationLevel('repeatable read').execute(fn)
        : db.transaction().execute(fn),
    channelName: (base) => `${base}_${schemaName}`.slice(0, 63),
    async close() {
      if (closed) return
      closed = true
      for (const t of timers) clearTimeout(t)
      for (const c of listeners.splice(0)) await c.end().catch(() => {})
      await db.destroy()
    },
  }
  if (dialect === 'postgres' && pgOptions) {
    const opts = pgOptions
    store.listen = async (channel, onNotify, onReconnect) => {
      const backoff = new Backoff({ initialMs: 200, maxMs: 10_000, jitter: 'none' })
      const retry = () => {
        if (closed) return
        const delay = backoff.next()
        const t = setTimeout(() => {
          timers.delete(t)
          if (!closed) connect().then(onReconnect, retry)
        }, delay)
        timers.add(t)
      }
      const connect = async (): Promise<void> => {
        const client = new pg.Client(opts)
        client.on('notification', (n) => {
          if (n.channel === channel) onNotify(n.payload ?? '')
        })
        client.on('error', () => {
          const i = listeners.indexOf(client)
          if (i >= 0) listeners.splice(i, 1)
          client.end().catch(() => {})
          retry()
        })
        try {
          await client.connect()
          await client.query(`LISTEN "${channel.replace(/"/g, '')}"`)
        } catch (err) {
          client.end().catch(() => {})
          throw err
        }
        if (closed) {
          await client.end().catch(() => {})
          return
        }
        listeners.push(client)
        backoff.reset()
      }
      await connect()
    }
  }
  return store
}
