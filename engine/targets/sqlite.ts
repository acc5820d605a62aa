/**
 * SQLite targets (SPEC section 7) through better-sqlite3, an optional package loaded only
 * when a topology has a sqlite database. The file is opened per use (a run, a plan, a
 * compare): opening is a file open, and nothing stays locked between runs.
 *
 * A run writes in one `BEGIN IMMEDIATE` transaction, which takes SQLite's write lock at
 * once: another writer holding it makes the run fail after BUSY_TIMEOUT_MS (and retry
 * like any failed run) instead of failing halfway. WAL mode, so readers of the file are
 * not blocked by a run and a run is not blocked by them. Statements are prepared once per
 * table and run row by row: with better-sqlite3 that is the fast path (no SQL parsing,
 * no round trip), about a microsecond per row (docs/benchmarks.md, phase targets).
 */
import type { ForeignDatabaseSpec } from '../topology/types.js';
import type { TextRow } from '../runner/copytext.js';
import type { Receiver, ReceiverState, ReceiverTable, TableProblem } from './receiver.js';
import { BucardoError } from '../errors.js';
import { sqliteAffinityOf, sqliteValue, typeClassOf, type SqliteValue } from './values.js';
import * as sql from '../sql/sqlite.js';

/** How long a run waits for another connection's write lock before it fails (and is retried). */
const BUSY_TIMEOUT_MS = 2_000;

/** The part of better-sqlite3's API used here (the package ships no types). */
interface SqliteStatement {
  run(...params: unknown[]): unknown;
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  iterate(...params: unknown[]): IterableIterator<unknown[]>;
  raw(on?: boolean): SqliteStatement;
  safeIntegers(on?: boolean): SqliteStatement;
}
interface SqliteDatabase {
  prepare(text: string): SqliteStatement;
  exec(text: string): void;
  pragma(text: string): unknown;
  close(): void;
  readonly inTransaction: boolean;
  readonly open: boolean;
}
type SqliteDatabaseClass = new (file: string, options?: { readonly?: boolean; fileMustExist?: boolean; timeout?: number }) => SqliteDatabase;

let driver: SqliteDatabaseClass | null = null;

/** better-sqlite3, imported on first use; without it, one sentence saying how to install it. */
export async function loadSqliteDriver(): Promise<SqliteDatabaseClass> {
  if (driver) return driver;
  const name = 'better-sqlite3';
  try {
    // a name in a variable: tsc needs neither the package nor its types to build bucardo
    driver = ((await import(name)) as { default: SqliteDatabaseClass }).default;
    return driver;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_MODULE_NOT_FOUND' && err.message.includes(`'${name}'`)) {
      throw new BucardoError('missing_package', `sqlite databases need the optional package ${name}: npm install ${name}`, { cause: e });
    }
    throw e;
  }
}

/** A SQLite failure as a message naming the database, its file and SQLite's code. */
function unavailable(spec: ForeignDatabaseSpec, e: unknown): BucardoError {
  const code = (e as { code?: string }).code ?? '';
  return new BucardoError('unreachable', `sqlite database ${spec.name} (${spec.path}) is unavailable: ${(e as Error).message}${code ? ` (${code})` : ''}`, {
    cause: e,
    hint:
      code === 'SQLITE_BUSY'
        ? 'another connection holds its write lock; the run is retried'
        : 'check that the file and its folder exist and are writable by the runner',
  });
}

export async function makeSqliteReceiver(spec: ForeignDatabaseSpec, options: { create?: boolean } = {}): Promise<Receiver> {
  const Database = await loadSqliteDriver();
  let db: SqliteDatabase;
  try {
    db = new Database(spec.path, { fileMustExist: !options.create, timeout: BUSY_TIMEOUT_MS });
    db.pragma('journal_mode = WAL');
  } catch (e) {
    throw unavailable(spec, e);
  }
  return new SqliteReceiver(spec, db);
}

/** Per table: its statements and each column's type class. */
interface Prepared {
  classes: ReturnType<typeof typeClassOf>[];
  keyAt: number[];
  upsert: SqliteStatement;
  insert: SqliteStatement;
  del: SqliteStatement;
}

class SqliteReceiver implements Receiver {
  private prepared = new Map<string, Prepared>();

  constructor(
    readonly spec: ForeignDatabaseSpec,
    private db: SqliteDatabase,
  ) {}

  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof BucardoError) throw e;
      throw unavailable(this.spec, e);
    }
  }

  private statements(t: ReceiverTable): Prepared {
    const id = JSON.stringify([t.name, t.columns, t.keyColumns]);
    let p = this.prepared.get(id);
    if (!p) {
      p = {
        classes: t.types.map(typeClassOf),
        keyAt: t.keyColumns.map((k) => t.columns.indexOf(k)),
        upsert: this.db.prepare(sql.sqliteUpsertSql(t.name, t.columns, t.keyColumns)),
        insert: this.db.prepare(sql.sqliteInsertSql(t.name, t.columns)),
        del: this.db.prepare(sql.sqliteDeleteSql(t.name, t.keyColumns)),
      };
      this.prepared.set(id, p);
    }
    return p;
  }

  private values(p: Prepared, row: TextRow): SqliteValue[] {
    return p.classes.map((c, i) => sqliteValue(c, row[i]));
  }

  async begin(): Promise<void> {
    this.guard(() => this.db.exec('BEGIN IMMEDIATE'));
  }

  async readState(sync: string): Promise<ReceiverState | null> {
    return this.guard(() => {
      if (!this.db.prepare(sql.SQLITE_TABLE_EXISTS_SQL).get(sql.SQLITE_STATE_TABLE)) return null;
      const r = this.db.prepare(sql.SQLITE_READ_STATE_SQL).get(sync) as
        | { run_seq: number; snapshots: string; tables: string; run_id: string | null; finished: string | null; rows: number | null }
        | undefined;
      if (!r) return { runSeq: 0, snapshots: {}, tables: [], runId: null, finished: null, rows: null };
      return {
        runSeq: Number(r.run_seq),
        snapshots: JSON.parse(r.snapshots),
        tables: JSON.parse(r.tables),
        runId: r.run_id,
        finished: r.finished,
        rows: r.rows,
      };
    });
  }

  async installBookkeeping(): Promise<void> {
    this.guard(() => this.db.exec(sql.SQLITE_CREATE_STATE_SQL));
  }

  async checkTables(tables: ReceiverTable[]): Promise<TableProblem[]> {
    return this.guard(() => tables.flatMap((t) => this.checkTable(t)));
  }

  private checkTable(t: ReceiverTable): TableProblem[] {
    const createTable = sql.sqliteCreateTableSql(
      t.name,
      t.columns.map((c, i) => ({ name: c, affinity: sqliteAffinityOf(typeClassOf(t.types[i])) })),
      t.keyColumns,
    );
    const problem = (p: string) => [{ table: t, problem: p, createTable }];
    const cols = this.db.prepare(sql.SQLITE_COLUMNS_SQL).all(t.name) as { name: string; pk: number }[];
    if (!cols.length) return problem('does not exist');
    const names = new Set(cols.map((c) => c.name));
    const missing = t.columns.filter((c) => !names.has(c));
    if (missing.length) return problem(`lacks column ${missing.map((c) => JSON.stringify(c)).join(', ')}`);
    const same = (a: string[]) => a.length === t.keyColumns.length && t.keyColumns.every((k) => a.includes(k));
    const pk = cols.filter((c) => c.pk > 0).map((c) => c.name);
    if (same(pk)) return [];
    const unique = (this.db.prepare(sql.SQLITE_UNIQUE_INDEXES_SQL).all(t.name) as { name: string }[]).some((ix) =>
      same((this.db.prepare(sql.SQLITE_INDEX_COLUMNS_SQL).all(ix.name) as { name: string }[]).map((c) => c.name)),
    );
    return unique ? [] : problem(`has no primary key or unique index on exactly (${t.keyColumns.join(', ')})`);
  }

  async hasRows(t: ReceiverTable): Promise<boolean> {
    return this.guard(() => (this.db.prepare(sql.sqliteHasRowsSql(t.name)).get() as { full: number }).full === 1);
  }

  async empty(t: ReceiverTable): Promise<void> {
    this.guard(() => this.db.prepare(sql.sqliteEmptySql(t.name)).run());
  }

  async applyChanges(t: ReceiverTable, rows: TextRow[]): Promise<void> {
    const p = this.statements(t);
    const present = t.columns.length;
    this.guard(() => {
      for (const row of rows) {
        const v = this.values(p, row);
        if (row[present] === 't') p.upsert.run(...v);
        else p.del.run(...p.keyAt.map((i) => v[i]));
      }
    });
  }

  async insertRows(t: ReceiverTable, rows: TextRow[]): Promise<void> {
    const p = this.statements(t);
    this.guard(() => {
      for (const row of rows) p.insert.run(...this.values(p, row));
    });
  }

  async writeState(sync: string, s: ReceiverState): Promise<void> {
    this.guard(() =>
      this.db.prepare(sql.SQLITE_WRITE_STATE_SQL).run(sync, s.runSeq, JSON.stringify(s.snapshots), JSON.stringify(s.tables), s.runId, s.finished, s.rows),
    );
  }

  async commit(): Promise<void> {
    this.guard(() => this.db.exec('COMMIT'));
  }

  async close(): Promise<void> {
    if (!this.db.open) return;
    if (this.db.inTransaction) this.db.exec('ROLLBACK');
    this.db.close();
  }

  async *readRows(t: ReceiverTable): AsyncIterable<unknown[]> {
    const stmt = this.db
      .prepare(sql.sqliteReadRowsSql(t.name, t.columns, t.keyColumns))
      .raw(true)
      .safeIntegers(true);
    for (const row of stmt.iterate()) yield row.map(canonical);
  }

  expected(t: ReceiverTable, row: TextRow): unknown[] {
    return t.types.map((ty, i) => canonical(sqliteValue(typeClassOf(ty), row[i])));
  }
}

/**
 * A SQLite value tagged with its kind, so that compare tells 1 from '1' and a BLOB from its
 * text. INTEGER and REAL are one kind: SQLite itself stores a REAL without a fraction as an
 * integer, and reads -0.0 back as 0.
 */
function canonical(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (Buffer.isBuffer(v)) return `blob:${v.toString('hex')}`;
  if (typeof v === 'bigint' || typeof v === 'number') return `num:${v}`;
  return `text:${String(v)}`;
}
