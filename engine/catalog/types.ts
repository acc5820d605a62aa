/** What one database holds, as read from pg_catalog and bucardo's own metadata. */

export interface ColumnInfo {
  name: string;
  /** format_type(atttypid, atttypmod) */
  type: string;
  notNull: boolean;
  /** attgenerated = 's': computed on every database, never copied. */
  generated: boolean;
  /** attidentity: '' | 'a' (always) | 'd' (by default) */
  identity: string;
}

export interface TablePrivileges {
  select: boolean;
  insert: boolean;
  update: boolean;
  delete: boolean;
  truncate: boolean;
  trigger: boolean;
}

export interface TableInfo {
  schema: string;
  name: string;
  /** 'r' ordinary, 'p' partitioned */
  kind: string;
  columns: ColumnInfo[];
  /** Primary key columns in key order, or null. */
  primaryKey: string[] | null;
  /** Unique, non-partial, non-expression indexes whose columns are all NOT NULL. */
  uniqueKeys: string[][];
  /** pg_class.reltuples (an estimate; -1 when never analysed). */
  estimatedRows: number;
  privileges: TablePrivileges;
  /** The table's owner (pg_class.relowner), and whether the current user is (a member of) it: dropping or re-enabling a trigger takes ownership. */
  owner: string;
  owned: boolean;
  /** A partitioned table's partitions at every level (sub-partitions too), in name order. */
  partitions?: PartitionInfo[];
}

/** One partition of a partitioned table (kept with its root, the table users name). */
export interface PartitionInfo {
  schema: string;
  name: string;
  /** Holds rows (not itself partitioned). */
  leaf: boolean;
}

export interface SequenceInfo {
  schema: string;
  name: string;
  /** setval needs UPDATE; reading last_value needs SELECT. */
  canSelect: boolean;
  canUpdate: boolean;
}

/** A trigger whose function lives in the topology schema (or whose name says it is ours). */
export interface TriggerInfo {
  tableSchema: string;
  tableName: string;
  name: string;
  /** pg_trigger.tgenabled: O origin, D disabled, R replica, A always. */
  enabled: string;
  functionSchema: string;
  functionName: string;
  /** pg_trigger.tgtype bits */
  type: number;
  oldTable: string | null;
  newTable: string | null;
  /** A WHEN clause or column list was added by hand. */
  hasWhen: boolean;
  hasColumns: boolean;
  /** The UPDATE OF column list (pg_trigger.tgattr), names in attribute order. */
  columns: string[];
  definition: string;
}

export interface FunctionInfo {
  name: string;
  /** pg_proc.prosrc */
  body: string;
  language: string;
  returnType: string;
  argCount: number;
}

/** A row of bucardo_<name>.installed */
export interface RegistryRow {
  objectType: string;
  objectName: string;
  tableSchema: string | null;
  tableName: string | null;
  fingerprint: string;
  detail: Record<string, unknown>;
}

export interface SyncRow {
  name: string;
  kind: string;
  role: string;
  fingerprint: string;
  /** The definition apply registered (planner/desired.ts syncDetail). */
  detail?: Record<string, unknown>;
}

export interface SyncRelationRow {
  sync: string;
  tableId: string;
  tableSchema: string;
  tableName: string;
  keyColumns: string[];
  copyPending: boolean;
}

/** The privileges the current user holds on one table or sequence of the topology schema. */
export interface InstalledGrant {
  name: string;
  kind: 'table' | 'sequence';
  /** Upper-case privilege names held, e.g. SELECT, INSERT (tables), USAGE, UPDATE (sequences). */
  held: string[];
}

/** What bucardo itself installed for one topology in one database. */
export interface InstalledState {
  schema: string;
  schemaExists: boolean;
  /** The current user is (a member of) the schema's owner: it may change what is in it. */
  schemaOwned: boolean;
  /** USAGE on the schema: without it nothing in it can be read or written. */
  schemaUsage: boolean;
  /** USAGE on the schema and SELECT on its metadata tables: false leaves meta, registry, syncs unread (empty). */
  readable: boolean;
  /** Per table and sequence of the schema, what the current user holds (what the runner needs: planner/privileges.ts). */
  grants: InstalledGrant[];
  /** meta table contents (empty when missing) */
  meta: Record<string, string>;
  /** Tables in the topology schema, with their columns. */
  tables: Map<string, ColumnInfo[]>;
  functions: Map<string, FunctionInfo>;
  triggers: TriggerInfo[];
  registry: RegistryRow[];
  syncs: SyncRow[];
  syncRelations: SyncRelationRow[];
}

export interface DatabaseCatalog {
  /** Topology key of the database. */
  database: string;
  serverVersion: number;
  currentUser: string;
  isSuperuser: boolean;
  canCreateSchema: boolean;
  /** The runner writes with session_replication_role = replica: superuser, or SET granted (PG 15+). */
  canSetReplicationRole: boolean;
  tables: TableInfo[];
  sequences: SequenceInfo[];
  /** Every partition of the database with its root: a name that is a partition is told apart from a missing table. */
  partitionsOf: (PartitionInfo & { rootSchema: string; rootName: string })[];
  installed: InstalledState;
}
