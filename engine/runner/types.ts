/**
 * Shapes shared by the runner's modules: what a run reports, and what a database told us
 * about a sync when the run started.
 */

/** The outcome of one run of one sync. */
export interface RunResult {
  sync: string;
  runId: string;
  /** False when nothing was pending: nothing was written anywhere. */
  wrote: boolean;
  /** Changed rows replicated, per table (display name), summed over winning sources. */
  rowsByTable: Record<string, number>;
  rows: number;
  conflicts: number;
  started: Date;
  finished: Date;
  /** Tables copied whole (onetimecopy or fullcopy), display names. */
  copied: string[];
  /**
   * Changes handed back to their source for the next run, per table: a receiver with
   * writers of its own had a newer local change of the key, or held its row locked
   * (docs/protocol.md, step 9).
   */
  deferred?: Record<string, number>;
  /** The conflicts recorded (at most CONFLICT_DETAIL_CAP; `conflicts` counts them all). */
  conflictRecords?: ConflictRecord[];
  /**
   * Per table (display name): the rows each source sent (its winning changes) and each
   * database took (staged or applied directly, less what it deferred; whole-table copies
   * are in `copied`). What after_sync's ctx.summary shows (custom/summary.ts).
   */
  traffic?: Record<string, { sent: Record<string, number>; received: Record<string, number> }>;
  /** Ids of the tables the run covered (a delta run): the runner wakes the sync only for changes of these (runner.ts onNotify). */
  tableIds?: string[];
}

/** One conflict, as recorded in the `conflict` table and logged. */
export interface ConflictRecord {
  table: string;
  schema: string;
  name: string;
  key: Record<string, unknown>;
  /** Winning database, null for `skip` and for a row merged by a custom handler. */
  winner: string | null;
  /** A custom handler merged the sources' rows into a new one, written everywhere. */
  merged?: true;
  /** Databases that changed the key, with the time of their latest change. */
  changed: { database: string; at: string }[];
}

/** One column of a replicated table as one database declares it (not dropped, not generated): its name and type there. */
export interface ReplicatedColumn {
  name: string;
  type: string;
  /** A type of PostgreSQL itself (oid below 16384): its binary COPY form is the same in every database. */
  builtin?: boolean;
  /** For a domain, its base type: what a temp table of the runner's declares (a domain's NOT NULL would refuse a deleted row's NULLs). */
  base?: string | null;
}

/** A table of a sync as one database's `sync_relation` and catalog describe it. */
export interface RelationInfo {
  tableId: string;
  schema: string;
  name: string;
  keyColumns: string[];
  copyPending: boolean;
  /** A fingerprint of the catalog rows the details below come from (sql/prepare.ts). */
  catalogVersion?: string;
  /** The next run empties the table here and copies it again (how this database receives it changed: sync_recopy). */
  recopy?: boolean;
  /** null: the table does not exist in this database. */
  columns: ReplicatedColumn[] | null;
  /** A valid, non-partial btree index on exactly the key columns: rows can be fetched key by key. */
  keyIndexed?: boolean;
  /** ... and it is unique and not deferrable: it can arbitrate INSERT ... ON CONFLICT. */
  keyUnique?: boolean;
  /** Its delta table here has its `log` trigger: the change index notes its changes (a source in a sync of 100 tables or more). */
  changeIndexed?: boolean;
  /** Foreign keys of this table (as the child) here. */
  fks?: { name: string; parentSchema: string; parentName: string; childCols: string[]; parentCols: string[] }[];
}

/** What the prepare query returns for one database. */
export interface DatabaseState {
  database: string;
  runSeq: number;
  /** Watermark per source database: pg_snapshot text. */
  snapshots: Record<string, string>;
  relations: RelationInfo[];
  /** Sequence `schema.name` (display) -> last_value text, null when never called. */
  sequences: Record<string, string | null>;
  /** Sequence -> what it can hand out here (absent: ascending by 1 from 1, unbounded). */
  sequenceShapes?: Record<string, SequenceShape>;
  registered: boolean;
  /** pg_control_system().system_identifier of the database's cluster now. */
  systemIdentifier: string | null;
  /** The one a run recorded in meta when it last wrote here (a restored dump carries the old one). */
  recordedSystemIdentifier: string | null;
}

/** What values a sequence hands out in one database (pg_sequences), as decimal text. */
export interface SequenceShape {
  start: string;
  min: string;
  max: string;
  inc: string;
}
