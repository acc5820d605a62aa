/**
 * Read-only queries of `bucardo status`, per database of a sync.
 */
import { qualify, quoteLiteral } from '../../sql/ident.js';
import { deltaTableName } from '../../names.js';

/** $1 sync: the latest run, the conflicts ever counted, the watermark, the tables. */
export function historySql(schema: string): string {
  const t = (n: string) => qualify(schema, n);
  return `SELECT
  (SELECT row_to_json(r) FROM (SELECT run_id, started, finished, rows::text AS rows, conflicts, error FROM ${t('run')} WHERE sync = $1 ORDER BY started DESC, finished DESC NULLS FIRST LIMIT 1) r) AS last_run,
  (SELECT coalesce(sum(conflicts), 0)::text FROM ${t('run')} WHERE sync = $1 AND error IS NULL) AS conflicts_total,
  (SELECT json_build_object('run_seq', run_seq::text, 'snapshots', snapshots) FROM ${t('sync_state')} WHERE sync = $1) AS state,
  (SELECT coalesce(json_agg(table_id), '[]') FROM ${t('sync_relation')} WHERE sync = $1) AS tables,
  EXISTS (SELECT 1 FROM ${t('sync')} WHERE name = $1) AS registered`;
}

/** Is the sync's advisory lock held (a run in progress)? $1, $2: the lock key. */
export const RUNNING_SQL = `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND granted
  AND classid = $1::int::oid AND objid = $2::int::oid AND objsubid = 2) AS running`;

/**
 * Pending changes on one source after watermark $1 (empty: everything) for sync $2: count
 * and age of the oldest, over every table of the sync.
 */
export function pendingCountSql(schema: string, tableIds: string[]): string {
  const cond = `(($1 = '') OR (_bucardo_txid >= pg_snapshot_xmin(nullif($1, '')::pg_snapshot) AND NOT pg_visible_in_snapshot(_bucardo_txid, nullif($1, '')::pg_snapshot))) AND _bucardo_origin IS DISTINCT FROM $2`;
  const parts = tableIds.map((id) => `SELECT count(*) AS n, min(_bucardo_ts) AS oldest FROM ${qualify(schema, deltaTableName(id))} WHERE ${cond}`);
  parts.push(`SELECT count(*), min(_bucardo_ts) FROM ${qualify(schema, 'truncate_log')} WHERE ${cond} AND table_id = ANY(ARRAY[${tableIds.map(quoteLiteral).join(', ') || "''"}]::text[])`);
  return `SELECT sum(n)::text AS n, extract(epoch FROM clock_timestamp() - min(oldest))::float8 AS lag FROM (${parts.join(' UNION ALL ')}) p`;
}
