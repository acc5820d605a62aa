/**
 * SQL of custom conflict handlers and hooks (SPEC section 6, docs/custom-code.md).
 *
 * Conflicts of a table with `conflict: {custom: ...}` are computed on the hub as for any
 * strategy (sql/conflicts.ts, winner NULL), then read back in batches through a cursor, in
 * key order; each batch's current rows are read on every source that changed its keys, in
 * that source's snapshot; the handler's winners are written back into the conflict table,
 * so the losers forget their keys as with any strategy. A merged row's winner is MERGED
 * (every source forgets the key) and the row itself goes into every database's staging
 * table. Values travel as PostgreSQL's text form (the fixed session settings of
 * engine/connect.ts make it exact), keys as text arrays, one per key column.
 */
import { quoteIdent, qualify, quoteLiteral } from '../../sql/ident.js';
import { conflictTable } from './conflicts.js';
import { stagingTable, PRESENT, STAGED_SRC, STAGED_TS } from './apply.js';

/** Winner index of a key whose handler returned a merged row: no source's pending change is kept. */
export const MERGED = -1;

const CURSOR = 'bucardo_custom_cf';

/**
 * Opens the cursor over one table's conflicts: key as text values, source indexes, change
 * times (text in UTC, made ISO in Node: to_char per element cost more than the rest of the
 * fetch); ordered by key, so the same conflicts always make the same batches. Arrays as
 * JSON: JSON.parse reads them ~35% faster than node-postgres' array parser.
 */
export function declareConflictCursorSql(tableId: string, keyColumns: string[]): string {
  const keys = keyColumns.map((c) => `cf.${quoteIdent(c)}`);
  return `DECLARE ${CURSOR} NO SCROLL CURSOR FOR SELECT to_json(ARRAY[${keys.map((k) => `${k}::text`).join(', ')}]) AS key, to_json(cf.srcs) AS srcs, to_json(cf.tss::text[]) AS tss
  FROM ${quoteIdent(conflictTable(tableId))} cf ORDER BY ${keys.join(', ')}`;
}

export function fetchConflictsSql(n: number): string {
  return `FETCH ${Math.trunc(n)} FROM ${CURSOR}`;
}

export const CLOSE_CONFLICT_CURSOR_SQL = `CLOSE ${CURSOR}`;

/**
 * The current row of each key on one source (its read snapshot), in the order given:
 * $1..$k the key columns' text values (one text[] per key column), $k+1 the column names.
 * `ord` (1-based) and the row as a JSON object of text values, or NULL where the source
 * has no row for the key. `keyTypes`: the key columns' types in this database (format_type).
 * One index probe per key (a LATERAL subquery that OFFSET 0 keeps from being flattened):
 * left to itself the planner hashes the whole table for each batch, 2x slower on 100k
 * conflicts of a 100k-row table and worse the larger the table.
 */
export function currentRowsSql(t: { schema: string; name: string; keyColumns: string[]; columns: string[] }, keyTypes: string[]): string {
  const k = t.keyColumns.map((_, i) => `k${i}`);
  const on = t.keyColumns.map((c, i) => `t.${quoteIdent(c)} = k.${k[i]}::${keyTypes[i]}`).join(' AND ');
  const values = t.columns.map((c) => `t.${quoteIdent(c)}::text`).join(', ');
  const names = `$${t.keyColumns.length + 1}::text[]`;
  return `SELECT k.ord, CASE WHEN t.ctid IS NULL THEN NULL ELSE json_object(${names}, ARRAY[${values}]::text[]) END AS row
  FROM unnest(${k.map((_, i) => `$${i + 1}::text[]`).join(', ')}) WITH ORDINALITY AS k(${k.join(', ')}, ord)
  LEFT JOIN LATERAL (SELECT t.ctid, t.* FROM ${qualify(t.schema, t.name)} t WHERE ${on} OFFSET 0) t ON true
  ORDER BY k.ord`;
}

export const winnersTable = (tableId: string) => `bucardo_cw_${tableId}`;

/** The handler's answers of a table, batch after batch: key text values, winner (source index, or MERGED). */
export function createWinnersSql(tableId: string, keyColumns: string[]): string {
  return `CREATE TEMP TABLE ${quoteIdent(winnersTable(tableId))} (${keyColumns.map((_, i) => `k${i} text`).join(', ')}, w int) ON COMMIT DROP`;
}

/** One batch's answers: $1..$k the keys' text values as above, $k+1 the winners. */
export function insertWinnersSql(tableId: string, keyColumns: string[]): string {
  const params = [...keyColumns.map((_, i) => `$${i + 1}::text[]`), `$${keyColumns.length + 1}::int[]`].join(', ');
  return `INSERT INTO ${quoteIdent(winnersTable(tableId))} SELECT * FROM unnest(${params})`;
}

/**
 * Every answer into the conflict table at once, after the last batch: one hash join over
 * the whole set (an UPDATE per batch scanned the unindexed conflict table once per batch:
 * 3 s of 100k conflicts in 10 batches).
 */
export function applyWinnersSql(tableId: string, keyColumns: string[]): string {
  const cw = quoteIdent(winnersTable(tableId));
  const on = keyColumns.map((c, i) => `cf.${quoteIdent(c)}::text = w.k${i}`).join(' AND ');
  return `ANALYZE ${cw};\nUPDATE ${quoteIdent(conflictTable(tableId))} cf SET winner = w.w FROM ${cw} w WHERE ${on}`;
}

/** Merged rows into a receiver's staging table (text COPY, whatever the table's binary flag): the row, present, the time and the sender. */
export function copyMergedIntoStagingSql(tableId: string, columns: string[]): string {
  return `COPY ${quoteIdent(stagingTable(tableId))} (${columns.map(quoteIdent).join(', ')}, ${PRESENT}, ${STAGED_TS}, ${STAGED_SRC}) FROM STDIN`;
}

/** Around each statement a hook runs in the run's transaction: a failed one (which the hook may catch) must not leave the transaction aborted. */
export const HOOK_SAVEPOINT_SQL = 'SAVEPOINT bucardo_hook';
export const HOOK_RELEASE_SQL = 'RELEASE SAVEPOINT bucardo_hook';
export const HOOK_UNDO_SQL = 'ROLLBACK TO SAVEPOINT bucardo_hook; RELEASE SAVEPOINT bucardo_hook';

/**
 * How a skipped run is recorded in the `run` table's error column: this mark, then the
 * reason. `bucardo status` reads it back as a skip (state idle, the reason shown), not as
 * a failure; a reader of the table sees what it is. (The table has no column for it, and
 * the planner adds metadata tables, not columns, to existing installs.)
 */
export const SKIP_MARK = 'bucardo:skipped: ';

/**
 * A skipped run, after its transactions rolled back: $1 run_id, $2 sync, $3 started,
 * $4 the reason, $5 runner. The sync's earlier skip rows go: a hook that vetoes every run
 * for hours would otherwise add a row per attempt; the latest is what status shows.
 */
export function skippedRunSql(schema: string): string {
  const run = qualify(schema, 'run');
  const mark = quoteLiteral(SKIP_MARK);
  // a data-modifying WITH runs whether or not it is referenced; both parts see the same snapshot
  return `WITH gone AS (DELETE FROM ${run} WHERE sync = $2 AND starts_with(error, ${mark}))
INSERT INTO ${run} (run_id, sync, started, finished, error, runner) VALUES ($1, $2, $3::timestamptz, clock_timestamp(), ${mark} || $4, $5)`;
}

/** The reason of a skipped run from its recorded error, or null when the run was not a skip. */
export function skipReason(error: string | null | undefined): string | null {
  return error?.startsWith(SKIP_MARK) ? error.slice(SKIP_MARK.length) : null;
}
