/**
 * Read-only queries of `bucardo status` (per database of a sync) and of the metrics
 * poller (one query per source database, every few seconds).
 */
import { qualify, quoteLiteral } from '../../sql/ident.js';
import { deltaTableName } from '../../objectnames.js';
import { pendingCondition } from './watermark.js';

/**
 * $1 sync, $2 application names of the sync's runner connections: the latest run, the
 * conflicts ever counted, the watermark, the tables, and when a runner's connection for
 * this sync was last active here (its every run, idle ones included, queries each
 * database; an idle run writes nothing, so pg_stat_activity is the only trace of it).
 * `now` is the server's clock, so ages do not depend on the client's.
 */
export function historySql(schema: string): string {
  const t = (n: string) => qualify(schema, n);
  return `SELECT
  (SELECT row_to_json(r) FROM (SELECT run_id, started, finished, rows::text AS rows, conflicts, error, runner FROM ${t('run')} WHERE sync = $1 ORDER BY started DESC, finished DESC NULLS FIRST LIMIT 1) r) AS last_run,
  (SELECT coalesce(sum(conflicts), 0)::text FROM ${t('run')} WHERE sync = $1 AND error IS NULL) AS conflicts_total,
  (SELECT json_build_object('run_seq', run_seq::text, 'snapshots', snapshots) FROM ${t('sync_state')} WHERE sync = $1) AS state,
  (SELECT coalesce(json_agg(table_id), '[]') FROM ${t('sync_relation')} WHERE sync = $1) AS tables,
  EXISTS (SELECT 1 FROM ${t('sync')} WHERE name = $1) AS registered,
  ${RUNNER_ACTIVITY}`;
}

/**
 * $2: the application_name prefixes of the sync's runner connections (`bucardo:SYNC:ROLE`,
 * followed by `:PID@HOST` since runners name themselves). Sessions of a runner for the
 * sync here, their names (who is connected), and the end of their latest statement (NULL
 * where pg_stat_activity hides it: another role without pg_read_all_stats); the server's
 * clock.
 */
const RUNNER_SESSIONS = `FROM pg_catalog.pg_stat_activity WHERE datname = current_database()
    AND (application_name = ANY($2::text[]) OR EXISTS (SELECT 1 FROM unnest($2::text[]) p WHERE starts_with(application_name, p || ':')))`;
const RUNNER_ACTIVITY = `(SELECT count(*)::int ${RUNNER_SESSIONS}) AS runner_sessions,
  (SELECT max(state_change) ${RUNNER_SESSIONS}) AS runner_active,
  (SELECT coalesce(json_agg(DISTINCT application_name), '[]') ${RUNNER_SESSIONS}) AS runner_names,
  clock_timestamp() AS now`;

/** The same activity alone, for a database where the sync is not installed: $2 as above ($1 unused). */
export const RUNNER_ACTIVITY_SQL = `SELECT $1::text AS sync, ${RUNNER_ACTIVITY}`;

/**
 * Is the sync's advisory lock held (a run in progress)? $1, $2: the lock key. `holder`:
 * the application_name of the session holding it (a runner's names the runner).
 */
export const RUNNING_SQL = `SELECT l.pid IS NOT NULL AS running, a.application_name AS holder
  FROM (SELECT 1) one
  LEFT JOIN pg_catalog.pg_locks l ON l.locktype = 'advisory' AND l.granted
    AND l.classid = $1::int::oid AND l.objid = $2::int::oid AND l.objsubid = 2
    AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
  LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
  LIMIT 1`;

/**
 * Pending changes on one source after watermark $1 (empty: everything) for sync $2: count
 * and age of the oldest, over every table of the sync.
 */
export function pendingCountSql(schema: string, tableIds: string[]): string {
  const where = pendingCondition({ snapshot: "nullif($1, '')::pg_snapshot", nullable: true }, '$2');
  return `SELECT sum(n)::text AS n, extract(epoch FROM clock_timestamp() - min(oldest))::float8 AS lag FROM (${pendingRowsSql(schema, tableIds, where)}) p`;
}

/** Per delta table of `tableIds` and for their TRUNCATEs: (n, oldest) of the rows matching `where`. */
function pendingRowsSql(schema: string, tableIds: string[], where: string): string {
  const parts = tableIds.map((id) => `SELECT count(*) AS n, min(_bucardo_ts) AS oldest FROM ${qualify(schema, deltaTableName(id))} WHERE ${where}`);
  parts.push(
    `SELECT count(*), min(_bucardo_ts) FROM ${qualify(schema, 'truncate_log')} WHERE ${where} AND table_id = ANY(ARRAY[${tableIds.map(quoteLiteral).join(', ') || "''"}]::text[])`,
  );
  return parts.join(' UNION ALL ');
}

/** $1 sync names: the tables of each (the metrics poller's query text is built from them). */
export function syncTablesSql(schema: string): string {
  return `SELECT sync, array_agg(table_id ORDER BY table_id) AS tables FROM ${qualify(schema, 'sync_relation')} WHERE sync = ANY($1::text[]) GROUP BY sync`;
}

/**
 * The metrics poller's one query on a source database, for every sync reading from it:
 * per sync, the changes pending after the watermark this database holds for it
 * (`sync_state.snapshots` -> this database; none yet: everything pending) and the age in
 * seconds of the oldest (0 when none). $1 this database's name, $2 the sync names (in
 * `syncs` order). One sequential scan of each delta table: they stay small while a runner
 * keeps up, since each run purges what every consumer confirmed.
 */
export function pendingBySyncSql(schema: string, syncs: { tableIds: string[] }[]): string {
  const branches = syncs.map((s, i) => {
    const sync = `($2::text[])[${i + 1}]`;
    const w = `(SELECT nullif(snapshots->>$1, '')::pg_snapshot FROM ${qualify(schema, 'sync_state')} WHERE sync = ${sync})`;
    const where = pendingCondition({ snapshot: 'w.snap', nullable: true }, sync);
    return `SELECT ${sync} AS sync, coalesce(sum(n), 0)::text AS n, coalesce(extract(epoch FROM clock_timestamp() - min(oldest)), 0)::float8 AS lag
  FROM (SELECT ${w} AS snap) w, LATERAL (${pendingRowsSql(schema, s.tableIds, where)}) p`;
  });
  return branches.join('\nUNION ALL\n');
}
