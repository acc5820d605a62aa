/**
 * Watermark, run history and conflicts, written in each database's write transaction
 * (one statement: a run costs one round trip here), and the confirm-then-purge that
 * follows once every database committed (docs/protocol.md, steps 6 and 8).
 */
import { qualify, quoteLiteral } from '../../sql/ident.js';
import { deltaTableName } from '../../objectnames.js';
import { CHANGE_INDEX } from '../../sql/capture.js';

/**
 * $1 sync, $2 run_seq, $3 snapshots jsonb, $4 run_id, $5 started, $6 rows, $7 rows_by_table,
 * $8 conflicts, $9 runner, $10 conflict rows jsonb array, $11 table ids whose copy is done,
 * $12/$13/$14 sequences (schema, name, value) to setval, $15 the run_seq this run read here
 * (0: no row), $16 the cluster's system identifier to record (a source), or NULL.
 *
 * The watermark is written only over the row the run read (compare and set): `ok` is
 * false when it changed since, and the run must then not commit (docs/protocol.md). The
 * fence makes that impossible; the check proves it.
 */
export function writeStateSql(schema: string): string {
  const t = (n: string) => qualify(schema, n);
  return `WITH st AS (
  INSERT INTO ${t('sync_state')} AS s (sync, run_seq, snapshots, updated_at) SELECT $1, $2::bigint, $3::jsonb, now() WHERE $15::bigint = 0
  ON CONFLICT (sync) DO NOTHING
  RETURNING 1
), up AS (
  UPDATE ${t('sync_state')} SET run_seq = $2::bigint, snapshots = $3::jsonb, updated_at = now() WHERE sync = $1 AND run_seq = $15::bigint AND $15::bigint > 0
  RETURNING 1
), id AS (
  INSERT INTO ${t('meta')} (key, value) SELECT 'system_identifier', $16::text WHERE $16::text IS NOT NULL
  ON CONFLICT (key) DO NOTHING
  RETURNING 1
), h AS (
  INSERT INTO ${t('run')} (run_id, sync, started, finished, rows, rows_by_table, conflicts, error, runner)
  VALUES ($4, $1, $5::timestamptz, clock_timestamp(), $6::bigint, $7::jsonb, $8::int, NULL, $9)
  ON CONFLICT (run_id) DO UPDATE SET finished = EXCLUDED.finished, rows = EXCLUDED.rows, rows_by_table = EXCLUDED.rows_by_table,
    conflicts = EXCLUDED.conflicts, error = NULL
  RETURNING 1
), cf AS (
  INSERT INTO ${t('conflict')} (run_id, sync, table_schema, table_name, key, winner, detail)
  SELECT $4, $1, x->>'schema', x->>'name', x->'key', x->>'winner', x->'detail' FROM jsonb_array_elements($10::jsonb) x
  RETURNING 1
), p AS (
  UPDATE ${t('sync_relation')} SET copy_pending = false WHERE sync = $1 AND table_id = ANY($11::text[]) RETURNING 1
), rc AS (
  DELETE FROM ${t('sync_recopy')} WHERE sync = $1 AND table_id = ANY($11::text[]) RETURNING 1
), q AS (
  ${setvalFrom('$12', '$13', '$14')}
)
SELECT (SELECT count(*) FROM st) + (SELECT count(*) FROM up) = 1 AS ok,
  (SELECT count(*) FROM h) + (SELECT count(*) FROM cf) + (SELECT count(*) FROM p) + (SELECT count(*) FROM rc) + (SELECT count(*) FROM q) + (SELECT count(*) FROM id) AS n`;
}

/** What a run records in each database (writeStateSql). */
export interface RunState {
  sync: string;
  runSeq: number;
  snapshots: Record<string, string>;
  runId: string;
  started: Date;
  rows: number;
  rowsByTable: Record<string, number>;
  conflicts: number;
  runner: string;
  /** Conflict rows, as the JSON array the statement expands. */
  conflictRows: string;
  /** Table ids whose copy_pending flag this run clears here. */
  copyDone: string[];
  /** [schema, name, value] of the sequences to bring up here. */
  setvals: [string, string, string][];
  /** The run_seq this run read in this database (0: none). */
  expectedSeq: number;
  /** A source's system identifier, recorded in meta the first time (null: a target). */
  systemIdentifier: string | null;
}

/** The parameters of writeStateSql, in its order. */
export function writeStateParams(s: RunState): unknown[] {
  return [
    s.sync,
    String(s.runSeq),
    JSON.stringify(s.snapshots),
    s.runId,
    s.started.toISOString(),
    String(s.rows),
    JSON.stringify(s.rowsByTable),
    s.conflicts,
    s.runner,
    s.conflictRows,
    s.copyDone,
    s.setvals.map((v) => v[0]),
    s.setvals.map((v) => v[1]),
    s.setvals.map((v) => v[2]),
    String(s.expectedSeq),
    s.systemIdentifier,
  ];
}

/** A failed run, recorded where reachable: $1 run_id, $2 sync, $3 started, $4 error, $5 runner. */
export function failedRunSql(schema: string): string {
  return `INSERT INTO ${qualify(schema, 'run')} (run_id, sync, started, finished, error, runner)
VALUES ($1, $2, $3::timestamptz, clock_timestamp(), $4, $5)
ON CONFLICT (run_id) DO UPDATE SET error = EXCLUDED.error, finished = EXCLUDED.finished`;
}

/** setval of the sequences given as three parallel arrays (schema, name, value): the parameter placeholders. */
function setvalFrom(schemas: string, names: string, values: string): string {
  return `SELECT setval(c.oid, v, true) FROM unnest(${schemas}::text[], ${names}::text[], ${values}::bigint[]) AS u(sch, nam, v)
  JOIN pg_catalog.pg_namespace n ON n.nspname = u.sch JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = u.nam AND c.relkind = 'S'`;
}

/** Setval only (a run where nothing but sequences differ). */
export function setvalSql(): string {
  return setvalFrom('$1', '$2', '$3');
}

/** Step 11, first half: $1 sync, $2 confirmed jsonb, $3 the run's run_seq (a later run's state is left alone). */
export function confirmSql(schema: string): string {
  return `UPDATE ${qualify(schema, 'sync_state')} SET confirmed = $2::jsonb WHERE sync = $1 AND run_seq = $3::bigint`;
}

/** Before purgeSql, on the connection that runs it: $1 this database's name, which the purge text reads back. */
export const PURGE_SETUP_SQL = `SELECT set_config('bucardo.purge_db', $1, false)`;

/**
 * Step 11, second half, one simple-protocol text for every table: delete the deltas that
 * every delta sync consuming them from this database has confirmed. A sync that never
 * confirmed holds everything (bool_and over coalesce(false)); a fullcopy sync reads no
 * deltas and holds nothing. The last result set: rows deleted per delta table (a large
 * purge is followed by a VACUUM of that table, off the run's path).
 */
export function purgeSql(schema: string, tableIds: string[], changeIndex: boolean): string {
  const t = (n: string) => qualify(schema, n);
  const db = "current_setting('bucardo.purge_db')";
  const horizon = (filter: string) => `(SELECT CASE WHEN bool_and(coalesce(st.confirmed ? ${db}, false))
       THEN min(pg_snapshot_xmin((st.confirmed->>${db})::pg_snapshot)) END
     FROM ${t('sync')} s LEFT JOIN ${t('sync_state')} st ON st.sync = s.name
    WHERE s.role = 'source' AND s.kind = 'delta'${filter})`;
  const parts = tableIds.map(
    (id) =>
      `DELETE FROM ${t(deltaTableName(id))} WHERE _bucardo_txid < ${horizon(` AND EXISTS (SELECT 1 FROM ${t('sync_relation')} r WHERE r.sync = s.name AND r.table_id = ${quoteLiteral(id)})`)}`,
  );
  parts.push(`DELETE FROM ${t('truncate_log')} WHERE _bucardo_txid < ${horizon('')}`);
  // a table's notes, with the horizon of that table (every delta sync reading it from here)
  if (changeIndex) {
    const ids = `ARRAY[${tableIds.map(quoteLiteral).join(', ')}]::text[]`;
    parts.push(`DELETE FROM ${t(CHANGE_INDEX)} c USING (
  SELECT r.table_id, CASE WHEN bool_and(coalesce(st.confirmed ? ${db}, false)) THEN min(pg_snapshot_xmin((st.confirmed->>${db})::pg_snapshot)) END AS horizon
    FROM ${t('sync')} s JOIN ${t('sync_relation')} r ON r.sync = s.name LEFT JOIN ${t('sync_state')} st ON st.sync = s.name
   WHERE s.role = 'source' AND s.kind = 'delta' AND r.table_id = ANY(${ids})
   GROUP BY r.table_id) h
 WHERE c.table_id = h.table_id AND c._bucardo_txid < h.horizon`);
  }
  return parts.join(';\n');
}

/**
 * Run history older than the retention, on one database: $1 sync, $2 retention in
 * milliseconds. The latest run of the sync stays (bucardo status shows it). Uses the
 * (sync, started) and (sync, at) indexes.
 */
export function pruneHistorySql(schema: string): string {
  const t = (n: string) => qualify(schema, n);
  return `WITH latest AS (SELECT run_id FROM ${t('run')} WHERE sync = $1 ORDER BY started DESC LIMIT 1),
r AS (DELETE FROM ${t('run')} WHERE sync = $1 AND started < now() - $2::bigint * interval '1 millisecond' AND run_id NOT IN (SELECT run_id FROM latest) RETURNING 1),
c AS (DELETE FROM ${t('conflict')} WHERE sync = $1 AND at < now() - $2::bigint * interval '1 millisecond' RETURNING 1)
SELECT (SELECT count(*) FROM r)::bigint AS runs, (SELECT count(*) FROM c)::bigint AS conflicts`;
}
