/**
 * The writer interface of databases that are not PostgreSQL (SPEC section 7): what the
 * runner (engine/runner/foreign.ts), plan, compare and status ask of every such target,
 * so that a new engine is one file implementing `Receiver` and one case in makeReceiver.
 *
 * A receiver takes rows as PostgreSQL's text (COPY text format, engine/runner/copytext.ts)
 * and maps them to its engine's values itself (values.ts). Every write of a run happens in
 * one transaction that `begin` opens and `commit` ends, and is idempotent (delete by key,
 * upsert by key, empty then insert), so a run redone after a crash leaves the same rows.
 * The receiver keeps its sync's watermark beside the rows (`writeState`, in the same
 * transaction): the resume rule of docs/protocol.md ("Watermarks") counts it like any
 * database's, so a target that was down or failed to commit gets every change it missed.
 */
import type { ForeignDatabaseSpec } from '../topology/types.js';
import type { TextRow } from '../runner/copytext.js';

/** A table as one receiver takes it. */
export interface ReceiverTable {
  /** The table's name there (SPEC section 7: `table` of `schema.table`, or the override's). */
  name: string;
  /** Its schema there (the source's, or the override's): Redis keys are `schema.table:KEY`; SQL engines ignore it. */
  schema?: string;
  /** The table on the sources, for messages: SQL syntax. */
  display: string;
  keyColumns: string[];
  /** The columns sent, in the order of the rows' fields. */
  columns: string[];
  /** Each sent column's PostgreSQL type on the first source (format_type; a domain's base type). */
  types: string[];
}

/** A sync's bookkeeping on a receiver: what sync_state holds on a PostgreSQL database. */
export interface ReceiverState {
  /** 0: no row (the sync never committed here). */
  runSeq: number;
  /** Watermark per source database: pg_snapshot text. */
  snapshots: Record<string, string>;
  /** Table ids the receiver already holds (copied or caught up): a table missing here is due for onetimecopy. */
  tables: string[];
  runId: string | null;
  /** When the last run committed here (ISO 8601), and the rows it wrote. */
  finished: string | null;
  rows: number | null;
}

/** What is wrong with a table on a receiver (plan and the run report it; empty: nothing). */
export interface TableProblem {
  table: ReceiverTable;
  /** What is missing, as a phrase: `does not exist`, `lacks column "x"`, `has no unique key on (id)`. */
  problem: string;
  /** The CREATE TABLE it would take, in the engine's dialect. */
  createTable: string;
}

/** One database of another engine, as the runner, plan, compare and status use it. */
export interface Receiver {
  readonly spec: ForeignDatabaseSpec;
  /** Opens the run's write transaction; fails when the database is unavailable (locked, unreadable). */
  begin(): Promise<void>;
  /** The sync's bookkeeping ({runSeq: 0, ...} where there is none); null: the bookkeeping table itself is missing (apply installs it). */
  readState(sync: string): Promise<ReceiverState | null>;
  /** The bookkeeping table, created (apply). */
  installBookkeeping(): Promise<void>;
  /** The problems of the tables there (missing table, column or key). */
  checkTables(tables: ReceiverTable[]): Promise<TableProblem[]>;
  hasRows(t: ReceiverTable): Promise<boolean>;
  /** Every row deleted (TRUNCATE, an `always` onetimecopy, a fullcopy). */
  empty(t: ReceiverTable): Promise<void>;
  /** Changed rows: fields in t.columns order, then a present flag ('t': upsert, else delete by key). */
  applyChanges(t: ReceiverTable, rows: TextRow[]): Promise<void>;
  /** Rows of a table just emptied (fields in t.columns order). */
  insertRows(t: ReceiverTable, rows: TextRow[]): Promise<void>;
  /**
   * Optional, for engines with sequences: each named sequence that exists there brought up
   * so that it never hands out `value` (the furthest a source handed out) or a lower one;
   * one that does not exist there is skipped. Never lowers a sequence, so a redone run may call it again.
   */
  raiseSequences?(sequences: { name: string; value: bigint }[]): Promise<void>;
  /** The watermark, in the run's transaction. */
  writeState(sync: string, state: ReceiverState): Promise<void>;
  commit(): Promise<void>;
  /** Rolls back what is open and releases the database; safe to call twice. */
  close(): Promise<void>;
  /** Every row in key order, each field as the engine holds it mapped to compare with `expected` (compare). */
  readRows(t: ReceiverTable): AsyncIterable<unknown[]>;
  /** A row read from PostgreSQL (text fields) as readRows yields it, to compare the two. */
  expected(t: ReceiverTable, row: TextRow): unknown[];
}

/** The receiver of a database of another engine; its driver is loaded only now, so topologies without one never need it. */
export async function makeReceiver(spec: ForeignDatabaseSpec, options: { create?: boolean } = {}): Promise<Receiver> {
  switch (spec.type) {
    case 'sqlite': {
      const { makeSqliteReceiver } = await import('./sqlite.js');
      return makeSqliteReceiver(spec, options);
    }
    case 'mariadb': {
      const { makeMariadbReceiver } = await import('./mariadb.js');
      return makeMariadbReceiver(spec);
    }
    case 'redis': {
      const { makeRedisReceiver } = await import('./redis.js');
      return makeRedisReceiver(spec);
    }
    default: {
      const never: never = spec.type;
      throw new Error(`unknown database type ${String(never)}`);
    }
  }
}

/** withReceiver(cb): opens, hands over, always closes. `create`: a missing database is created (apply). */
export async function withReceiver<T>(spec: ForeignDatabaseSpec, fn: (r: Receiver) => Promise<T>, options: { create?: boolean } = {}): Promise<T> {
  const r = await makeReceiver(spec, options);
  try {
    return await fn(r);
  } finally {
    await r.close();
  }
}

/** A database of another engine as messages name it: its file, or its server without user or password. */
export function describeDatabaseType(spec: ForeignDatabaseSpec): string {
  return `${spec.type} database ${spec.name} (${spec.server ? describeServer(spec) : spec.path})`;
}

/** host:port/database (mariadb) or host:port db N (redis), the defaults filled in; never the password. */
export function describeServer(spec: ForeignDatabaseSpec): string {
  const s = spec.server ?? {};
  let url: URL | undefined;
  try {
    url = s.url ? new URL(s.url) : undefined;
  } catch {}
  const host = s.host ?? (url?.hostname || 'localhost');
  const port = s.port ?? (url?.port ? Number(url.port) : spec.type === 'redis' ? 6379 : 3306);
  const path = url?.pathname.slice(1) ?? '';
  if (spec.type === 'redis') return `${host}:${port} db ${s.db ?? (path ? Number(path) : 0)}`;
  return `${host}:${port}/${s.database ?? decodeURIComponent(path)}`;
}
