/**
 * The trusted form of a topology file: what `loadTopology` returns once the YAML has
 * passed the JSON Schema and the semantic checks. Every name here is exact (SQL folding
 * already applied); every default already filled in.
 */

/** 1-based position of a value in the topology file, for messages. */
export interface Pos {
  line: number;
  col: number;
}

/** How to reach a database. Either a libpq URI or discrete fields; never printed raw. */
export interface ConnectionSpec {
  url?: string;
  host?: string;
  port?: number;
  dbname?: string;
  user?: string;
  password?: string;
  sslmode?: 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';
}

export interface DatabaseSpec {
  /** The key under `databases:`. */
  name: string;
  connection: ConnectionSpec;
  /** Changes that syncs write here are captured again (cascades). */
  makedelta: boolean;
  pos: Pos;
}

/** The engines a database entry may name with `type:` (SPEC section 7); postgres is the default. */
export type DatabaseType = 'postgres' | 'sqlite' | 'mariadb' | 'redis';

/**
 * A database that is not PostgreSQL (SPEC section 7): a target only, written through a
 * receiver (engine/targets/receiver.ts), never holding capture objects.
 */
export interface ForeignDatabaseSpec {
  name: string;
  type: Exclude<DatabaseType, 'postgres'>;
  /** sqlite: the database file, absolute (the `path:` as written resolved against the topology file's folder); '' for a server. */
  path: string;
  /** mariadb, redis: how to reach the server; never printed raw (it may hold a password). */
  server?: ServerConnectionSpec;
  pos: Pos;
}

/**
 * How to reach a MariaDB/MySQL or Redis server: a URL (`mysql://`, `mariadb://`,
 * `redis://`, `rediss://`) or discrete fields, which override the URL's parts. The
 * receiver fills in the engine's defaults (localhost, 3306 or 6379, db 0).
 */
export interface ServerConnectionSpec {
  url?: string;
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  /** mariadb: the database (schema) holding the tables. */
  database?: string;
  /** redis: the database number. */
  db?: number;
}

/** An exact table or sequence name: no folding, no quoting. */
export interface QualifiedName {
  schema: string;
  name: string;
}

/** One entry of a relgroup's `tables:` list, not yet resolved against a catalog. */
export type TableEntry =
  | {
      kind: 'name';
      table: QualifiedName;
      /** Replication key columns (exact names); absent: primary key, else unique NOT NULL index. */
      key?: string[];
      conflict?: ConflictStrategy;
      autokick?: boolean;
      makedelta?: boolean;
      /** The columns sent to every receiver (exact names, the key among them); absent: all. */
      columns?: string[];
      /** Row filter for every receiver: SQL over the source row; absent: every row. */
      where?: string;
      /** Overrides per target database (never a source), by database name. */
      targets?: Map<string, TargetOverride>;
      pos: Pos;
    }
  | {
      kind: 'match';
      /** Glob over `schema.table` (exact names): `*` any run of characters, `?` one. */
      pattern: string;
      conflict?: ConflictStrategy;
      autokick?: boolean;
      makedelta?: boolean;
      pos: Pos;
    };

export interface RelgroupSpec {
  name: string;
  tables: TableEntry[];
  /** Exact names or globs (same syntax as `match:`) removed from the group. */
  exclude: { pattern: string; pos: Pos }[];
  sequences: { seq: QualifiedName; pos: Pos }[];
  pos: Pos;
}

export type ConflictStrategy =
  | { kind: 'latest' }
  | { kind: 'latest_table' }
  | { kind: 'latest_sync' }
  | { kind: 'priority'; order: string[] }
  | { kind: 'random' }
  | { kind: 'skip' }
  | { kind: 'abort' }
  | { kind: 'custom'; module: ModuleRef };

/** A user's ES module named in the topology (section 6 of SPEC.md). */
export interface ModuleRef {
  /** The path as written, relative to the topology file. */
  path: string;
  /** Absolute path (the topology file's folder + path). */
  file: string;
  /** sha256 of its content when the topology was loaded (hex); '' when it could not be read. */
  sha256: string;
  /** The function it must export. */
  export: 'resolve' | 'transform' | 'before_sync' | 'after_sync' | 'on_error';
  pos: Pos;
}

/** How one target database receives one table (customname, customcols, row filter, transform). */
export interface TargetOverride {
  database: string;
  /** The table's name there; absent: the same as on the sources. */
  name?: QualifiedName;
  columns?: string[];
  where?: string;
  transform?: ModuleRef;
  pos: Pos;
}

export type OneTimeCopy = 'never' | 'always' | 'if_empty';
export type DeleteMethod = 'truncate' | 'delete' | 'truncate_cascade';
export type Isolation = 'repeatable read' | 'serializable';

export interface HooksSpec {
  before_sync?: ModuleRef;
  after_sync?: ModuleRef;
  on_error?: ModuleRef;
}

export interface SyncSpec {
  name: string;
  kind: 'delta' | 'fullcopy';
  relgroup: string;
  /** Database names, in the order written (order matters for ties and onetimecopy). */
  sources: string[];
  /** The PostgreSQL targets. */
  targets: string[];
  /** The targets of other engines (topology.foreignDatabases), in the order written; absent when none. */
  foreignTargets?: string[];
  conflict: ConflictStrategy;
  onetimecopy: OneTimeCopy;
  autokick: boolean;
  /** Milliseconds; null: only on kicks. */
  checktimeMs: number | null;
  enabled: boolean;
  deletemethod: DeleteMethod;
  strict: boolean;
  isolation: Isolation;
  lockTables: boolean;
  analyzeAfterCopy: boolean;
  vacuumAfterCopy: boolean;
  rebuildIndex: boolean;
  hooks: HooksSpec;
  pos: Pos;
}

export interface Topology {
  /** The path as the user gave it (for messages). */
  file: string;
  /** Owner of everything apply installs; `main` by default. */
  name: string;
  /** How long run and conflict history is kept in each database (milliseconds; `run_history`, default 14 days). */
  runHistoryMs: number;
  /** The PostgreSQL databases. */
  databases: Map<string, DatabaseSpec>;
  /** The databases of other engines (`type:` other than postgres): targets only. */
  foreignDatabases?: Map<string, ForeignDatabaseSpec>;
  relgroups: Map<string, RelgroupSpec>;
  syncs: Map<string, SyncSpec>;
}
