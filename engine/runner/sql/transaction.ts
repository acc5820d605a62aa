/**
 * Transaction control of a run's connections (docs/protocol.md, "A delta run, step by
 * step"). A run's transactions begin and end in different steps (the write transactions
 * from the fence, step 1, to the commit, step 10; the read transactions from step 3 to
 * step 8), and a failed run ends them by closing its connections (step 12), so they are
 * statements the steps send, not a helper wrapped around one callback.
 */
import type { Isolation } from '../../topology/types.js';

/** A source's read transaction (steps 3 to 8, or a fullcopy's copy), which holds the run's snapshot there: the sync's `isolation`. */
export function beginReadSql(isolation: Isolation): string {
  return isolation === 'serializable' ? 'BEGIN ISOLATION LEVEL SERIALIZABLE' : 'BEGIN ISOLATION LEVEL REPEATABLE READ';
}

/** The read transaction's snapshot, as text: the watermark the run will write for that source. */
export const CURRENT_SNAPSHOT_SQL = 'SELECT pg_current_snapshot()::text AS snapshot';

export const COMMIT_SQL = 'COMMIT';
export const ROLLBACK_SQL = 'ROLLBACK';
