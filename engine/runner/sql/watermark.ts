/**
 * The pending-watermark condition (docs/protocol.md, "Watermarks: snapshots, not sequence
 * numbers"), written once for the run (sql/pending.ts: what a run consumes; sql/apply.ts:
 * the local changes a guarded write must not overwrite), `bucardo status` and the metrics
 * poller (sql/status.ts): a row of a delta table or of `truncate_log` that a sync has not
 * consumed yet. Its transaction is not visible in the sync's watermark snapshot of that
 * source (the `>=` xmin bound is implied by it, and lets a scan skip what is older), and it
 * was not written by the sync itself (no ping-pong; another sync's writes cascade).
 */

export interface Watermark {
  /** SQL expression of the watermark, a pg_snapshot. Evaluated more than once: a parameter, a column or an InitPlan. */
  snapshot: string;
  /**
   * The expression can be NULL at run time (no watermark yet: everything is pending). The
   * run knows while it builds its text and passes no watermark instead, which keeps the
   * condition free of an OR.
   */
  nullable: boolean;
}

/**
 * `watermark` null: none yet, everything not the sync's own is pending. `sync`: SQL
 * expression of the sync's name; null for a row that records no origin (the change
 * index: its notes only say where to look). `alias`: of the delta, truncate_log or
 * change_index row, when the condition is part of a join.
 */
export function pendingCondition(watermark: Watermark | null, sync: string | null, alias?: string): string {
  const col = (c: string) => (alias ? `${alias}.${c}` : c);
  const notOwn = sync === null ? 'true' : `${col('_bucardo_origin')} IS DISTINCT FROM ${sync}`;
  if (!watermark) return notOwn;
  const s = watermark.snapshot;
  const unseen = `${col('_bucardo_txid')} >= pg_snapshot_xmin(${s}) AND NOT pg_visible_in_snapshot(${col('_bucardo_txid')}, ${s})`;
  if (sync === null) return watermark.nullable ? `(${s} IS NULL OR (${unseen}))` : unseen;
  return watermark.nullable ? `(${s} IS NULL OR (${unseen})) AND ${notOwn}` : `${unseen} AND ${notOwn}`;
}
