/**
 * MariaDB and MySQL targets (SPEC section 7) through mysql2, loaded only when a topology
 * has a mariadb database. One connection per use (a run, a plan, a compare), utf8mb4 so
 * that characters beyond the BMP survive, in the session of MARIADB_SESSION_SQL (UTC,
 * strict mode).
 *
 * A run writes in one InnoDB transaction (START TRANSACTION ... COMMIT): a run that fails
 * or is killed leaves nothing there, because the server rolls back a connection that goes
 * away. Rows are written a batch at a time (multi-row INSERT ... ON DUPLICATE KEY UPDATE,
 * DELETE ... IN (...)), bounded by rows and bytes to stay under max_allowed_packet. Every
 * statement that MariaDB answers with a warning fails the run: a warning means it stored
 * something other than what was sent (a rounded DECIMAL, a truncated string).
 */
import type { Connection, ResultSetHeader } from 'mysql2/promise';
import type { ForeignDatabaseSpec } from '../topology/types.js';
import type { TextRow } from '../runner/copytext.js';
import type { Receiver, ReceiverState, ReceiverTable, TableProblem } from './receiver.js';
import { describeDatabaseType, describeServer } from './receiver.js';
import { BucardoError } from '../errors.js';
import { typeClassOf, type TypeClass } from './values.js';
import { mariadbCanonical, mariadbColumnTypeOf, mariadbExpected, mariadbValue, type MariadbValue } from './mariadb-values.js';
import * as sql from '../sql/mariadb.js';

/** Seconds a run waits for another transaction's row lock before it fails (and is retried). */
const LOCK_WAIT_S = 10;
const CONNECT_TIMEOUT_MS = 5_000;
/** A statement's bounds: rows, and bytes of values (MariaDB's max_allowed_packet is 16 MiB by default; hex doubles bytes). */
const BATCH_ROWS = 1_000;
const BATCH_BYTES = 4 << 20;

/** mysql2's connection options from the entry: the URL's parts, the discrete fields over them, the engine's defaults. */
function connectionOptions(spec: ForeignDatabaseSpec) {
  const s = spec.server ?? {};
  const url = s.url ? new URL(s.url) : undefined;
  const part = (v: string | undefined) => (v ? decodeURIComponent(v) : undefined);
  return {
    host: s.host ?? (url?.hostname || 'localhost'),
    port: s.port ?? (url?.port ? Number(url.port) : 3306),
    user: s.user ?? part(url?.username),
    password: s.password ?? part(url?.password),
    database: s.database ?? part(url?.pathname.slice(1)),
    charset: 'utf8mb4',
    connectTimeout: CONNECT_TIMEOUT_MS,
  };
}

/**
 * MariaDB errors of a statement that say "try again later" rather than "this cannot be
 * written": reported as `unreachable`, which the runner retries (engine/runner/retry.ts).
 */
const TRANSIENT_CODES: Record<string, string> = {
  ER_LOCK_DEADLOCK: 'a deadlock with another transaction on the target; the run is redone',
  ER_LOCK_WAIT_TIMEOUT: "another transaction held the rows' locks past innodb_lock_wait_timeout",
  ER_SERVER_SHUTDOWN: 'the server is shutting down',
  ER_CON_COUNT_ERROR: 'too many connections',
  ER_OUT_OF_RESOURCES: 'out of memory',
};

/** True for an error of the statement itself (it would fail again), false for the connection's or a transient one. */
function isStatementError(e: unknown): boolean {
  const err = e as { sqlState?: string; fatal?: boolean; code?: string };
  return Boolean(err.sqlState) && !err.fatal && !(String(err.code) in TRANSIENT_CODES);
}

/** A MariaDB failure as a message naming the database and server (never the password) and MariaDB's code. */
function unavailable(spec: ForeignDatabaseSpec, e: unknown): BucardoError {
  const code = (e as { code?: string }).code ?? '';
  return new BucardoError('unreachable', `${describeDatabaseType(spec)} is unavailable: ${(e as Error).message}${code ? ` (${code})` : ''}`, {
    cause: e,
    hint:
      code in TRANSIENT_CODES
        ? `${TRANSIENT_CODES[code]}; the run is retried`
        : `check that the server at ${describeServer(spec)} is up and that the user may write there`,
  });
}

export async function makeMariadbReceiver(spec: ForeignDatabaseSpec): Promise<Receiver> {
  const mysql = (await import('mysql2/promise')).default;
  try {
    const conn = await mysql.createConnection(connectionOptions(spec));
    conn.on('error', () => {}); // a lost connection fails the next query; unhandled, it would end the process
    try {
      await conn.query(sql.MARIADB_SESSION_SQL, [LOCK_WAIT_S]);
    } catch (e) {
      conn.destroy();
      throw e;
    }
    return new MariadbReceiver(spec, conn);
  } catch (e) {
    throw unavailable(spec, e);
  }
}

/** Per table: each column's type class and where the key columns are in a row. */
interface Shape {
  classes: TypeClass[];
  keyAt: number[];
}

class MariadbReceiver implements Receiver {
  private open = true;
  private inTransaction = false;

  constructor(
    readonly spec: ForeignDatabaseSpec,
    private conn: Connection,
  ) {}

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof BucardoError) throw e;
      if (isStatementError(e)) {
        throw new BucardoError('query_failed', `${describeDatabaseType(this.spec)}: ${(e as Error).message} (${String((e as { code?: string }).code)})`, {
          cause: e,
        });
      }
      throw unavailable(this.spec, e);
    }
  }

  private shape(t: ReceiverTable): Shape {
    return { classes: t.types.map(typeClassOf), keyAt: t.keyColumns.map((k) => t.columns.indexOf(k)) };
  }

  async begin(): Promise<void> {
    await this.guard(() => this.conn.query('START TRANSACTION'));
    this.inTransaction = true;
  }

  async readState(sync: string): Promise<ReceiverState | null> {
    return this.guard(async () => {
      const [tables] = await this.conn.query<Row[]>(sql.MARIADB_TABLE_SQL, [sql.MARIADB_STATE_TABLE]);
      if (!tables.some((r) => r.name === sql.MARIADB_STATE_TABLE)) return null;
      const [rows] = await this.conn.query<Row[]>(sql.MARIADB_READ_STATE_SQL, [sync]);
      const r = rows[0];
      if (!r) return { runSeq: 0, snapshots: {}, tables: [], runId: null, finished: null, rows: null };
      return {
        runSeq: Number(r.run_seq),
        snapshots: JSON.parse(String(r.snapshots)),
        tables: JSON.parse(String(r.tables)),
        runId: (r.run_id as string | null) ?? null,
        finished: (r.finished as string | null) ?? null,
        rows: r.rows === null ? null : Number(r.rows),
      };
    });
  }

  async installBookkeeping(): Promise<void> {
    await this.guard(() => this.conn.query(sql.MARIADB_CREATE_STATE_SQL));
  }

  async checkTables(tables: ReceiverTable[]): Promise<TableProblem[]> {
    const out: TableProblem[] = [];
    for (const t of tables) out.push(...(await this.guard(() => this.checkTable(t))));
    return out;
  }

  private async checkTable(t: ReceiverTable): Promise<TableProblem[]> {
    const createTable = sql.mariadbCreateTableSql(
      t.name,
      t.columns.map((c, i) => ({ name: c, type: mariadbColumnTypeOf(t.types[i], t.keyColumns.includes(c)) })),
      t.keyColumns,
    );
    const problem = (p: string) => [{ table: t, problem: p, createTable }];
    // information_schema compares names without regard to case: the exact name is picked here
    const exact = <R extends Row>(rows: R[], col: string) => rows.filter((r) => r[col] === t.name);
    const [found] = await this.conn.query<Row[]>(sql.MARIADB_TABLE_SQL, [t.name]);
    const table = exact(found, 'name')[0];
    if (!table) return problem('does not exist');
    if (String(table.engine).toLowerCase() !== 'innodb') {
      return problem(`uses the ${String(table.engine)} engine, which cannot roll back a failed run: it must be InnoDB (ALTER TABLE ... ENGINE=InnoDB)`);
    }
    const [cols] = await this.conn.query<Row[]>(sql.MARIADB_COLUMNS_SQL, [t.name]);
    const names = new Set(exact(cols, 'tbl').map((c) => c.name));
    const missing = t.columns.filter((c) => !names.has(c));
    if (missing.length) return problem(`lacks column ${missing.map((c) => JSON.stringify(c)).join(', ')}`);
    const [ixRows] = await this.conn.query<Row[]>(sql.MARIADB_UNIQUE_INDEXES_SQL, [t.name]);
    const indexes = new Map<string, { cols: string[]; prefix: boolean }>();
    for (const r of exact(ixRows, 'tbl')) {
      const ix = indexes.get(String(r.ix)) ?? { cols: [], prefix: false };
      ix.cols.push(String(r.name));
      ix.prefix ||= r.part !== null;
      indexes.set(String(r.ix), ix);
    }
    const same = (a: string[]) => a.length === t.keyColumns.length && t.keyColumns.every((k) => a.includes(k));
    if ([...indexes.values()].some((ix) => !ix.prefix && same(ix.cols))) return [];
    return problem(`has no primary key or unique index on exactly (${t.keyColumns.join(', ')})`);
  }

  async hasRows(t: ReceiverTable): Promise<boolean> {
    return this.guard(async () => {
      const [rows] = await this.conn.query<Row[]>(sql.mariadbHasRowsSql(t.name));
      return Number(rows[0].full) === 1;
    });
  }

  async empty(t: ReceiverTable): Promise<void> {
    await this.guard(() => this.conn.query(sql.mariadbEmptySql(t.name)));
  }

  async applyChanges(t: ReceiverTable, rows: TextRow[]): Promise<void> {
    const s = this.shape(t);
    const present = t.columns.length;
    // deletes first: a key change, or a unique value moving from one row to another, then upserts cleanly
    const gone = rows.filter((r) => r[present] !== 't');
    const upserts = rows.filter((r) => r[present] === 't');
    for (const chunk of chunks(gone.map((r) => s.keyAt.map((i) => mariadbValue(s.classes[i], r[i]))))) {
      await this.write(
        t,
        sql.mariadbDeleteSql(t.name, t.keyColumns, chunk.length),
        chunk,
        s.keyAt.map((_, i) => i),
      );
    }
    await this.insert(t, s, upserts, (n) => sql.mariadbUpsertSql(t.name, t.columns, t.keyColumns, n));
  }

  async insertRows(t: ReceiverTable, rows: TextRow[]): Promise<void> {
    const s = this.shape(t);
    await this.insert(t, s, rows, (n) => sql.mariadbInsertSql(t.name, t.columns, n));
  }

  private async insert(t: ReceiverTable, s: Shape, rows: TextRow[], text: (n: number) => string): Promise<void> {
    const values = rows.map((r) => s.classes.map((c, i) => mariadbValue(c, r[i])));
    for (const chunk of chunks(values)) await this.write(t, text(chunk.length), chunk, s.keyAt);
  }

  /** One batch statement; an error or warning about one of its rows names that row by key. */
  private async write(t: ReceiverTable, text: string, rows: MariadbValue[][], keyAt: number[]): Promise<void> {
    let header: ResultSetHeader;
    try {
      [header] = await this.conn.query<ResultSetHeader>(text, rows.flat());
    } catch (e) {
      if (isStatementError(e)) throw this.rejected(t, rows, keyAt, (e as Error).message, e);
      throw unavailable(this.spec, e);
    }
    if (header.warningStatus > 0) {
      const [warnings] = await this.guard(() => this.conn.query<Row[]>(sql.MARIADB_WARNINGS_SQL));
      const w = warnings[0];
      throw this.rejected(t, rows, keyAt, `${String(w?.Level ?? 'Warning')} ${String(w?.Code ?? '')}: ${String(w?.Message ?? 'a value was changed')}`);
    }
  }

  private rejected(t: ReceiverTable, rows: MariadbValue[][], keyAt: number[], message: string, cause?: unknown): BucardoError {
    const at = /at row (\d+)/.exec(message);
    const row = at ? rows[Number(at[1]) - 1] : undefined;
    const key = row ? ` row (${t.keyColumns.join(', ')})=(${keyAt.map((i) => describeValue(row[i])).join(', ')}):` : '';
    return new BucardoError(
      'query_failed',
      `table ${JSON.stringify(t.name)} (${t.display}) in ${this.spec.type} database ${this.spec.name}:${key} ${message}`,
      {
        cause,
        hint: 'the column cannot hold that value as sent (docs/targets.md, "MariaDB and MySQL": NaN, infinities and timestamps out of DATETIME range, or a narrower column type); change the column or the value',
      },
    );
  }

  async raiseSequences(sequences: { name: string; value: bigint }[]): Promise<void> {
    await this.guard(async () => {
      for (const seq of sequences) {
        const [found] = await this.conn.query<Row[]>(sql.MARIADB_SEQUENCE_SQL, [seq.name]);
        if (found.some((r) => r.name === seq.name)) await this.conn.query(sql.mariadbSetvalSql(seq.name), [seq.value]);
      }
    });
  }

  async writeState(sync: string, s: ReceiverState): Promise<void> {
    await this.guard(() =>
      this.conn.query(sql.MARIADB_WRITE_STATE_SQL, [sync, s.runSeq, JSON.stringify(s.snapshots), JSON.stringify(s.tables), s.runId, s.finished, s.rows]),
    );
  }

  async commit(): Promise<void> {
    await this.guard(() => this.conn.query('COMMIT'));
    this.inTransaction = false;
  }

  async close(): Promise<void> {
    if (!this.open) return;
    this.open = false;
    try {
      if (this.inTransaction) await this.conn.query('ROLLBACK');
      await this.conn.end();
    } catch {
      this.conn.destroy();
    }
  }

  async *readRows(t: ReceiverTable): AsyncIterable<unknown[]> {
    const classes = t.types.map(typeClassOf);
    // every field as its bytes: mysql2 would parse JSON columns and round DATETIME(6) to a Date's milliseconds
    // the callback connection under the promise one: only it streams rows instead of holding them all
    const core = (this.conn as unknown as { connection: import('mysql2').Connection }).connection;
    const stream = core
      .query({
        sql: sql.mariadbReadRowsSql(t.name, t.columns, t.keyColumns),
        rowsAsArray: true,
        typeCast: (field: { buffer(): Buffer | null }) => field.buffer(),
      })
      .stream();
    for await (const row of stream as AsyncIterable<(Buffer | null)[]>) yield row.map((v, i) => mariadbCanonical(classes[i], v));
  }

  expected(t: ReceiverTable, row: TextRow): unknown[] {
    return t.types.map((ty, i) => mariadbExpected(typeClassOf(ty), row[i]));
  }
}

type Row = import('mysql2/promise').RowDataPacket;

/** Rows in statements of at most BATCH_ROWS rows and about BATCH_BYTES of values. */
function chunks(rows: MariadbValue[][]): MariadbValue[][][] {
  const out: MariadbValue[][][] = [];
  let cur: MariadbValue[][] = [];
  let bytes = 0;
  for (const r of rows) {
    const size = r.reduce<number>((n, v) => n + (v === null ? 4 : Buffer.isBuffer(v) ? 2 * v.length + 3 : String(v).length * 2 + 2), 0);
    if (cur.length && (cur.length >= BATCH_ROWS || bytes + size > BATCH_BYTES)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(r);
    bytes += size;
  }
  if (cur.length) out.push(cur);
  return out;
}

function describeValue(v: MariadbValue): string {
  if (v === null) return 'NULL';
  return Buffer.isBuffer(v) ? `\\x${v.toString('hex')}` : String(v);
}
