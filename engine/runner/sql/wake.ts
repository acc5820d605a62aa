/**
 * The statements that wake a runner (docs/protocol.md, "Waking the runner"): LISTEN and
 * NOTIFY on the topology's channels (listener.ts, kick.ts), the kick gate (gate.ts) and
 * the two-phase-commit doorbell (doorbell.ts). Lock keys are two int4 parameters.
 */
import { quoteIdent, qualify } from '../../sql/ident.js';
import { KICK_SEQUENCE } from '../../sql/capture.js';

export function listenSql(channel: string): string {
  return `LISTEN ${quoteIdent(channel)}`;
}

/** $1 channel, $2 payload. */
export const NOTIFY_SQL = 'SELECT pg_notify($1, $2)';

/** The kick gate, exclusively: waits until every writer that skipped its NOTIFY (holding it shared) has ended. */
export const GATE_LOCK_SQL = 'SELECT pg_advisory_lock($1::int, $2::int)';
export const GATE_UNLOCK_SQL = 'SELECT pg_advisory_unlock($1::int, $2::int)';

/** Whether PREPARE TRANSACTION is possible on this server at all ('0': no doorbell to poll). */
export const MAX_PREPARED_SQL = `SELECT current_setting('max_prepared_transactions') AS m`;

/**
 * One poll of the doorbell: `held`, a writer holds it (shared) now, tried without waiting
 * and let go at once; `n`, the kick_seq counter the writers bump.
 */
export function doorbellPollSql(schema: string): string {
  return `SELECT CASE WHEN pg_try_advisory_lock($1::int, $2::int) THEN NOT pg_advisory_unlock($1::int, $2::int) ELSE true END AS held,
                  (SELECT last_value::text FROM ${qualify(schema, KICK_SEQUENCE)}) AS n`;
}
