/**
 * The receiving side of a run (docs/protocol.md, step 6): a staging temp table per table
 * shaped like the receiver's own table, filled by COPY from the winning sources; then,
 * for every table in one round trip, delete the changed keys and insert the rows that
 * still exist. Session settings first: replica role (no capture, no user triggers, no FK
 * checks: the rows are already consistent on their source) and the origin mark.
 */
import { quoteIdent, qualify, quoteLiteral } from '../../sql/ident.js';
import { deltaTableName } from '../../objectnames.js';
import { copyFormat } from './pending.js';
import { pendingCondition } from './watermark.js';
import type { DeleteMethod } from '../../topology/types.js';
import { subsetGuardedWritesSql } from './receiving.js';

export const stagingTable = (tableId: string) => `bucardo_st_${tableId}`;
export const PRESENT = '_bucardo_present';
/** Staged with each row: the sending source's index and the time of its change (a deferred change is handed back with them). */
export const STAGED_SRC = '_bucardo_src';
export const STAGED_TS = '_bucardo_ts';

export const WRITE_SETUP_SQL = `SELECT set_config('session_replication_role', 'replica', true), set_config('bucardo.origin', $1, true)`;

/** Column definitions of `columns` with the receiver's types (RunTable.types: no lock on the user's table). */
function columnDefs(columns: string[], types: string[]): string {
  return columns.map((c, i) => `${quoteIdent(c)} ${types[i]}`).join(', ');
}

/** Per table, the staging table on receiver `db`: its columns with their types there. */
export function createStagingSql(db: string, tables: { tableId: string; columns: string[]; types: Record<string, string[]> }[]): string {
  return tables
    .map(
      (t) =>
        `CREATE TEMP TABLE ${quoteIdent(stagingTable(t.tableId))} (${columnDefs(t.columns, t.types[db])}, ${PRESENT} boolean, ${STAGED_TS} timestamptz, ${STAGED_SRC} integer) ON COMMIT DROP`,
    )
    .join(';\n');
}

export function copyIntoStagingSql(table: { tableId: string; binary?: boolean }, columns: string[]): string {
  return `COPY ${quoteIdent(stagingTable(table.tableId))} (${columns.map(quoteIdent).join(', ')}, ${PRESENT}, ${STAGED_TS}, ${STAGED_SRC}) FROM STDIN${copyFormat(table)}`;
}

export function copyIntoTableSql(table: { schema: string; name: string; binary?: boolean }, columns: string[]): string {
  return `COPY ${qualify(table.schema, table.name)} (${columns.map(quoteIdent).join(', ')}) FROM STDIN${copyFormat(table)}`;
}

/**
 * Empties several tables of one receiver: one TRUNCATE for all (so foreign keys among
 * them do not stop it), falling back to DELETE (no FK checks under the replica role) when
 * a table outside the list references one of them. `deleteOnly`: the receiver is a source
 * of the run, whose own read snapshot may hold locks that TRUNCATE would wait for.
 */
export function emptyTablesSql(tables: { schema: string; name: string }[], deleteOnly: boolean): string[] {
  const names = tables.map((t) => qualify(t.schema, t.name));
  const deletes = names.map((n) => `DELETE FROM ${n}`);
  if (deleteOnly) return [deletes.join(';\n')];
  return [
    `SAVEPOINT bucardo_empty; TRUNCATE ${names.join(', ')}; RELEASE SAVEPOINT bucardo_empty`,
    `ROLLBACK TO SAVEPOINT bucardo_empty; ${deletes.join('; ')}; RELEASE SAVEPOINT bucardo_empty`,
  ];
}

/**
 * A fullcopy target's tables emptied in one statement, so that foreign keys among them do
 * not stop a TRUNCATE: `deletemethod` truncate, truncate_cascade or delete.
 */
export function fullcopyEmptySql(tables: { schema: string; name: string }[], deletemethod: DeleteMethod): string {
  const names = tables.map((t) => qualify(t.schema, t.name));
  if (deletemethod === 'delete') return names.map((n) => `DELETE FROM ${n}`).join(';\n');
  return `TRUNCATE ${names.join(', ')}${deletemethod === 'truncate_cascade' ? ' CASCADE' : ''}`;
}

export interface ApplyTable {
  tableId: string;
  schema: string;
  name: string;
  keyColumns: string[];
  columns: string[];
  /** ANALYZE the staging table first (large sets: a temp table has no statistics). */
  analyze: boolean;
  /** Insert in key order (the receiver has a btree index on exactly the key). */
  sorted: boolean;
  /** Only some of the receiver's columns are sent: update in place (sql/receiving.ts), never delete then insert. */
  subset?: boolean;
}

/**
 * Writes one table's staged rows: DELETE every staged key, then INSERT the rows that
 * exist, in key order where a btree index on the key makes that order cheap to follow.
 *
 * Measured against the alternatives on 100k changed rows of a 1M-row pgbench_accounts
 * (fillfactor 100, median of 3, PG 17): delete + insert 297 ms, the same inserting in key
 * order 240 ms (index insertions walk the btree left to right), INSERT ... ON CONFLICT
 * (key) DO UPDATE 413 ms, UPDATE ... FROM + insert of the missing 409 ms: with full pages
 * an update is a new tuple and new index entries too, plus the conflict probe. Delete then
 * insert is also the form that is right whatever the other unique indexes (two rows
 * swapping a unique value violate it row by row under an update, never here).
 */
/** The names every apply statement of a table uses: staging table (s), table (t), the key join, the columns. */
export function applyNames(t: ApplyTable): { st: string; tbl: string; on: string; cols: string } {
  return {
    st: quoteIdent(stagingTable(t.tableId)),
    tbl: qualify(t.schema, t.name),
    on: t.keyColumns.map((c) => `t.${quoteIdent(c)} = s.${quoteIdent(c)}`).join(' AND '),
    cols: t.columns.map(quoteIdent).join(', '),
  };
}

export function applyStagingSql(t: ApplyTable): string[] {
  const { st, tbl, on, cols } = applyNames(t);
  const out: string[] = [];
  // Large staging sets: give the planner real numbers (a temp table has no statistics).
  if (t.analyze) out.push(`ANALYZE ${st}`);
  out.push(`DELETE FROM ${tbl} t USING ${st} s WHERE ${on}`);
  const order = t.sorted ? ` ORDER BY ${t.keyColumns.map(quoteIdent).join(', ')}` : '';
  out.push(`INSERT INTO ${tbl} (${cols}) OVERRIDING SYSTEM VALUE SELECT ${cols} FROM ${st} WHERE ${PRESENT}${order}`);
  return out;
}

/**
 * The applyStagingSql statements of every table a receiver takes as is, in one round trip
 * and in a savepoint: a unique violation rolls it back (UNDO_PLAIN_APPLY_SQL), and the
 * run then reads the rows at fault in the same transaction (constraints.ts).
 */
export function plainApplySql(statements: string[]): string {
  return ['SAVEPOINT bucardo_plain', ...statements, 'RELEASE SAVEPOINT bucardo_plain'].join(';\n');
}

export const UNDO_PLAIN_APPLY_SQL = 'ROLLBACK TO SAVEPOINT bucardo_plain; RELEASE SAVEPOINT bucardo_plain';

/** Temp table of the keys a direct apply deletes on a receiver (directDeleteSql). */
export const deleteKeysTable = (tableId: string) => `bucardo_dk_${tableId}`;

/** The receiver's key columns, empty, for the keys of a direct apply. */
export function createDeleteKeysSql(t: { tableId: string; schema: string; name: string; keyColumns: string[] }): string {
  return `CREATE TEMP TABLE ${quoteIdent(deleteKeysTable(t.tableId))} ON COMMIT DROP AS SELECT ${t.keyColumns.map(quoteIdent).join(', ')} FROM ${qualify(t.schema, t.name)} WITH NO DATA`;
}

export function copyIntoDeleteKeysSql(t: { tableId: string; keyColumns: string[]; binary?: boolean }): string {
  return `COPY ${quoteIdent(deleteKeysTable(t.tableId))} (${t.keyColumns.map(quoteIdent).join(', ')}) FROM STDIN${copyFormat(t)}`;
}

/**
 * Direct apply, the form for a large set of changes that one source sends to receivers
 * with no writers of their own: the pending keys are deleted here (this statement), then
 * the source's current rows stream straight into the table by COPY (copyIntoTableSql),
 * with no staging table in between. COPY inserts rows in batches where INSERT ... SELECT
 * inserts them one by one: on 100k changed rows of a 1M-row pgbench_accounts (PG 17,
 * median of 3) the apply took 272 ms against 687 ms staged (docs/benchmarks.md).
 */
export function directDeleteSql(t: { tableId: string; schema: string; name: string; keyColumns: string[] }): string {
  const dk = quoteIdent(deleteKeysTable(t.tableId));
  const on = t.keyColumns.map((c) => `t.${quoteIdent(c)} = s.${quoteIdent(c)}`).join(' AND ');
  return `ANALYZE ${dk};\nDELETE FROM ${qualify(t.schema, t.name)} t USING ${dk} s WHERE ${on}`;
}

/**
 * Step 2: EXCLUSIVE locks (writers wait, readers do not) on tables a run will replace
 * wholesale on a source, before its snapshot (snapshot.ts). `wait`: lock_timeout, so an
 * application's long transaction makes the run fail and retry instead of queueing every
 * other writer of the table behind it.
 */
export function lockTablesSql(tables: { schema: string; name: string }[], wait: string): string {
  return `SET LOCAL lock_timeout = ${quoteLiteral(wait)}; LOCK TABLE ${tables.map((t) => qualify(t.schema, t.name)).join(', ')} IN EXCLUSIVE MODE; SET LOCAL lock_timeout TO DEFAULT`;
}

/** A read-only look whose locks are let go at once (results: [savepoint, the look, rollback, release]). */
export function probeInSavepoint(sql: string): string {
  return `SAVEPOINT bucardo_probe; ${sql}; ROLLBACK TO SAVEPOINT bucardo_probe; RELEASE SAVEPOINT bucardo_probe`;
}

/** Per table: (table id, whether it has a row). */
export function emptinessSql(tables: { tableId: string; schema: string; name: string }[]): string {
  return tables.map((t) => `SELECT ${quoteLiteral(t.tableId)}::text AS id, EXISTS (SELECT 1 FROM ${qualify(t.schema, t.name)}) AS full`).join(' UNION ALL ');
}

/** Before guardedApplySql on a source: $1 the run's snapshot of this database, which the texts read back. */
export const GUARD_SETUP_SQL = `SELECT set_config('bucardo.cur_snapshot', $1, true)`;

export const lockedTable = (tableId: string) => `bucardo_lk_${tableId}`;
export const deferredTable = (tableId: string) => `bucardo_rq_${tableId}`;

/**
 * Step 9 on a receiver that has writers of its own (a source of the sync), for a table
 * it does not hold locked: write the staged rows without ever overwriting a local change
 * the run has not seen (docs/protocol.md, "Writing into a source").
 *
 * 1. Row-lock the existing rows of the staged keys, skipping rows another transaction
 *    holds (never waiting for an application, so never deadlocking with one either).
 * 2. Deferred keys: the table was truncated here after the run's snapshot; or the row
 *    exists but is held by another transaction; or a local change of the key committed
 *    after the snapshot (its delta is not visible in it). These are not written; they go
 *    back to their sender as pending changes (requeueInSql), and the next run settles them
 *    by the conflict strategy, with both changes in view.
 * 3. Delete the locked rows (only those: a row inserted meanwhile is not one of them),
 *    insert the staged rows. `arbiter`: a unique immediate index on exactly the key, so
 *    ON CONFLICT DO NOTHING skips a key that a local transaction inserted meanwhile
 *    (waiting for it first if it is still open);
 * 4. ... whose delta then defers the key too.
 * The last result set: deferred keys per sending source.
 */
/**
 * The pieces the guarded writes into a source share: the table, its delta table, the key
 * columns, and `unseen`, a condition on delta rows `d` (`truncated`: on truncate_log rows
 * `g`): a local change that the run's snapshot (GUARD_SETUP_SQL) does not show and that
 * does not come from this sync, pending past the watermark this run will write.
 */
function guardParts(schema: string, t: { tableId: string; schema: string; name: string; keyColumns: string[] }) {
  const keys = t.keyColumns.map(quoteIdent);
  const cur = "(SELECT current_setting('bucardo.cur_snapshot')::pg_snapshot)";
  const origin = "(SELECT current_setting('bucardo.origin'))";
  return {
    tbl: qualify(t.schema, t.name),
    delta: qualify(schema, deltaTableName(t.tableId)),
    keys,
    on: (a: string, b: string) => t.keyColumns.map((c) => `${a}.${quoteIdent(c)} = ${b}.${quoteIdent(c)}`).join(' AND '),
    sel: (a: string) => keys.map((k) => `${a}.${k}`).join(', '),
    unseen: pendingCondition({ snapshot: cur, nullable: false }, origin, 'd'),
    truncated: pendingCondition({ snapshot: cur, nullable: false }, origin, 'g'),
  };
}

export function guardedApplySql(schema: string, t: ApplyTable & { arbiter: boolean; latest: boolean }): string {
  const st = quoteIdent(stagingTable(t.tableId));
  const lk = quoteIdent(lockedTable(t.tableId));
  const rq = quoteIdent(deferredTable(t.tableId));
  const { tbl, delta, keys, on, sel, unseen, truncated } = guardParts(schema, t);
  const anyChange = (a: string) => `EXISTS (SELECT 1 FROM ${delta} d WHERE ${on('d', a)} AND ${unseen})`;
  // With `latest`, a local change older than the sender's would lose the next run's
  // conflict anyway: the run writes over it now (it stays pending here and carries the
  // winner's row on), and only a newer (or equal) one is deferred. Keys hot on both sides
  // then settle in the run that finds them instead of being deferred run after run.
  const localChange = (a: string) =>
    t.latest ? `EXISTS (SELECT 1 FROM ${delta} d WHERE ${on('d', a)} AND ${unseen} AND d._bucardo_ts >= ${a}.${STAGED_TS})` : anyChange(a);
  const cols = t.columns.map(quoteIdent).join(', ');
  // in a savepoint, bounded by lock_timeout: the one wait here is the insert's, for a
  // local transaction inserting the same key (deferAllSql undoes the table on a timeout)
  const out: string[] = [`SAVEPOINT bucardo_guard`, `SET LOCAL lock_timeout = ${quoteLiteral(GUARD_INSERT_WAIT)}`];
  if (t.analyze) out.push(`ANALYZE ${st}`);
  const deferred = (a: string) => `EXISTS (SELECT 1 FROM ${rq} r WHERE ${on('r', a)})`;
  const defer = (where: string) => `INSERT INTO ${rq} SELECT ${sel('s')}, s.${STAGED_SRC}, s.${STAGED_TS} FROM ${st} s WHERE NOT ${deferred('s')} AND ${where}`;
  // Each condition is its own statement: ANDed EXISTS become hash semi- and anti-joins,
  // where an OR of them is a subplan per staged row (100k rows x the delta table).
  const truncatedHere = `EXISTS (SELECT 1 FROM ${qualify(schema, 'truncate_log')} g WHERE g.table_id = ${quoteLiteral(t.tableId)} AND ${truncated})`;
  out.push(
    // the table was truncated here since the snapshot: every key (an InitPlan, once)
    `CREATE TEMP TABLE ${rq} ON COMMIT DROP AS SELECT ${sel('s')}, s.${STAGED_SRC}, s.${STAGED_TS} FROM ${st} s WHERE ${truncatedHere}`,
    // keys already known to be changed here since the snapshot are never locked: the
    // applications writing them (hot rows) do not wait for this run over rows it will not touch
    defer(localChange('s')),
    `CREATE TEMP TABLE ${lk} ON COMMIT DROP AS SELECT ${keys.join(', ')}, NULL::oid AS _bucardo_toid, NULL::tid AS _bucardo_tid FROM ${st} WITH NO DATA`,
    `WITH l AS (SELECT ${sel('t')}, t.tableoid, t.ctid FROM ${tbl} t JOIN ${st} s ON ${on('t', 's')} WHERE NOT ${deferred('s')} FOR UPDATE OF t SKIP LOCKED) INSERT INTO ${lk} SELECT * FROM l`,
    // again, now that the statement above holds the table (ROW SHARE): a TRUNCATE that
    // committed while it waited for the lock is visible from here on, and a later one
    // waits for this run. Checked only before, the run wrote its rows after that TRUNCATE.
    defer(truncatedHere),
    // rows another transaction holds, and changes that committed while the locks were taken
    defer(`NOT EXISTS (SELECT 1 FROM ${lk} l WHERE ${on('l', 's')}) AND EXISTS (SELECT 1 FROM ${tbl} t WHERE ${on('t', 's')})`),
    defer(localChange('s')),
    ...(t.subset
      ? subsetGuardedWritesSql(t, { tbl, st, lk, rq, on })
      : [
          `DELETE FROM ${tbl} t USING ${lk} l WHERE ${on('t', 'l')} AND t.tableoid = l._bucardo_toid AND t.ctid = l._bucardo_tid AND NOT EXISTS (SELECT 1 FROM ${rq} r WHERE ${on('r', 'l')})`,
          `INSERT INTO ${tbl} (${cols}) OVERRIDING SYSTEM VALUE SELECT ${cols} FROM ${st} s WHERE s.${PRESENT} AND NOT EXISTS (SELECT 1 FROM ${rq} r WHERE ${on('r', 's')})${t.sorted ? ` ORDER BY ${keys.join(', ')}` : ''}${t.arbiter ? ` ON CONFLICT (${keys.join(', ')}) DO NOTHING` : ''}`,
        ]),
    // a key that had no row to lock, whose insert a local transaction beat (its insert skipped)
    defer(`NOT EXISTS (SELECT 1 FROM ${lk} l WHERE ${on('l', 's')}) AND ${anyChange('s')}`),
    `SET LOCAL lock_timeout TO DEFAULT`,
    `RELEASE SAVEPOINT bucardo_guard`,
    `SELECT ${STAGED_SRC} AS src, count(*)::bigint AS n FROM ${rq} GROUP BY 1`,
  );
  return out.join(';\n');
}

/** After guardedApplySql failed on a unique violation: back to its savepoint, so that the rows at fault can be read. */
export const UNDO_GUARDED_APPLY_SQL = 'ROLLBACK TO SAVEPOINT bucardo_guard; RELEASE SAVEPOINT bucardo_guard';

/** How long guardedApplySql's insert waits for a local transaction that inserts the same key. */
const GUARD_INSERT_WAIT = '1s';

/**
 * After guardedApplySql timed out: back to before it (its lock_timeout with it), and every
 * staged key of the table deferred. Same last result set.
 */
export function deferAllSql(t: { tableId: string; keyColumns: string[] }): string {
  const rq = quoteIdent(deferredTable(t.tableId));
  const keys = t.keyColumns.map((c) => `s.${quoteIdent(c)}`).join(', ');
  return [
    `ROLLBACK TO SAVEPOINT bucardo_guard`,
    `RELEASE SAVEPOINT bucardo_guard`,
    `CREATE TEMP TABLE ${rq} ON COMMIT DROP AS SELECT ${keys}, s.${STAGED_SRC}, s.${STAGED_TS} FROM ${quoteIdent(stagingTable(t.tableId))} s`,
    `SELECT ${STAGED_SRC} AS src, count(*)::bigint AS n FROM ${rq} GROUP BY 1`,
  ].join(';\n');
}

/** The deferred keys of one sender, with the time of its change, as the sender's delta rows (text COPY). */
export function requeueOutSql(t: { tableId: string; keyColumns: string[] }, src: number): string {
  return `COPY (SELECT ${t.keyColumns.map(quoteIdent).join(', ')}, ${STAGED_TS}, NULL::text FROM ${quoteIdent(deferredTable(t.tableId))} WHERE ${STAGED_SRC} = ${Math.trunc(src)}) TO STDOUT`;
}

/**
 * Into the sender's delta table, in its write transaction: pending again for the next run
 * (a new transaction id, not visible in this run's snapshot), with the time of the
 * original change, and no origin, so that this sync reads it.
 */
export function requeueInSql(schema: string, t: { tableId: string; keyColumns: string[] }): string {
  return `COPY ${qualify(schema, deltaTableName(t.tableId))} (${t.keyColumns.map(quoteIdent).join(', ')}, _bucardo_ts, _bucardo_origin) FROM STDIN`;
}

export const keepTable = (tableId: string) => `bucardo_kp_${tableId}`;
const clearLockedTable = (tableId: string) => `bucardo_ek_${tableId}`;
export const clearDeferredTable = (tableId: string) => `bucardo_tq_${tableId}`;

/** The keys a source keeps when it takes a replicated TRUNCATE: its own pending changes that won step 4 (filled by COPY). */
export function createKeepSql(db: string, t: { tableId: string; keyColumns: string[]; columns: string[]; types: Record<string, string[]> }): string {
  const types = t.keyColumns.map((k) => t.types[db][t.columns.indexOf(k)]);
  return `CREATE TEMP TABLE ${quoteIdent(keepTable(t.tableId))} (${columnDefs(t.keyColumns, types)}) ON COMMIT DROP`;
}

export function copyIntoKeepSql(t: { tableId: string; keyColumns: string[]; binary?: boolean }): string {
  return `COPY ${quoteIdent(keepTable(t.tableId))} (${t.keyColumns.map(quoteIdent).join(', ')}) FROM STDIN${copyFormat(t)}`;
}

/**
 * A replicated TRUNCATE on a source (step 8), row by row and guarded like any write into a
 * source (guardedApplySql), so that no table lock is needed: lock every row but the kept
 * keys (skipping rows another transaction holds), delete those with no local change the
 * run has not seen. Every key still there afterwards (held by another transaction,
 * changed locally after the snapshot, or inserted since), and every key changed locally
 * after the snapshot, is deferred: it goes back to the truncating source as a deletion
 * at the time of the TRUNCATE, which the next run settles against the local change.
 * The last result set: the number of deferred keys.
 */
export function guardedClearSql(schema: string, t: { tableId: string; schema: string; name: string; keyColumns: string[] }): string {
  const kp = quoteIdent(keepTable(t.tableId));
  const ek = quoteIdent(clearLockedTable(t.tableId));
  const tq = quoteIdent(clearDeferredTable(t.tableId));
  const { tbl, delta, keys, on, sel, unseen } = guardParts(schema, t);
  return [
    `CREATE TEMP TABLE ${ek} ON COMMIT DROP AS SELECT ${keys.join(', ')}, NULL::oid AS _bucardo_toid, NULL::tid AS _bucardo_tid FROM ${tbl} WITH NO DATA`,
    `WITH l AS (SELECT ${sel('t')}, t.tableoid, t.ctid FROM ${tbl} t WHERE NOT EXISTS (SELECT 1 FROM ${kp} k WHERE ${on('k', 't')}) FOR UPDATE OF t SKIP LOCKED) INSERT INTO ${ek} SELECT * FROM l`,
    `DELETE FROM ${tbl} t USING ${ek} l WHERE ${on('t', 'l')} AND t.tableoid = l._bucardo_toid AND t.ctid = l._bucardo_tid AND NOT EXISTS (SELECT 1 FROM ${delta} d WHERE ${on('d', 'l')} AND ${unseen})`,
    `CREATE TEMP TABLE ${tq} ON COMMIT DROP AS SELECT DISTINCT ${keys.join(', ')} FROM (SELECT ${sel('t')} FROM ${tbl} t UNION ALL SELECT ${sel('d')} FROM ${delta} d WHERE ${unseen}) x
  WHERE NOT EXISTS (SELECT 1 FROM ${kp} k WHERE ${on('k', 'x')})`,
    `SELECT count(*)::bigint AS n FROM ${tq}`,
  ].join(';\n');
}

/** Before clearDeferredOutSql: $1 the time of the TRUNCATE the deferred deletions stand for. */
export const TRUNCATE_TS_SETUP_SQL = `SELECT set_config('bucardo.truncate_ts', $1, true)`;

/** The deferred deletions of guardedClearSql, as delta rows of the truncating source (text COPY, into requeueInSql). */
export function clearDeferredOutSql(t: { tableId: string; keyColumns: string[] }): string {
  return `COPY (SELECT ${t.keyColumns.map(quoteIdent).join(', ')}, current_setting('bucardo.truncate_ts')::timestamptz, NULL::text FROM ${quoteIdent(clearDeferredTable(t.tableId))}) TO STDOUT`;
}
