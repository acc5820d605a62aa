/**
 * Which failures are worth retrying, and how long to wait. The runner never exits because
 * of a database: every failure stops only the sync that hit it, which retries after a
 * jittered, growing delay; these tables only decide whether `--once` retries too.
 */
import { BucardoError } from '../errors.js';
import { SQLSTATE } from '../sqlstate.js';

/**
 * SQLSTATEs that say "try again later" rather than "something is wrong with the setup".
 * (graphile-worker keeps the same kind of table: src/lib.ts RETRYABLE_ERROR_CODES.)
 */
export const RETRYABLE_SQLSTATES: Record<string, string> = {
  [SQLSTATE.serialization_failure]: 'serialization_failure: a concurrent write under SERIALIZABLE; the run is redone',
  [SQLSTATE.deadlock_detected]: 'deadlock_detected: with a user transaction; the run is redone',
  [SQLSTATE.lock_not_available]: 'lock_not_available: lock_timeout hit on a user table',
  [SQLSTATE.query_canceled]: 'query_canceled: statement_timeout or a cancel from an operator',
  [SQLSTATE.admin_shutdown]: 'admin_shutdown: the server is shutting down (fast/smart stop)',
  [SQLSTATE.crash_shutdown]: 'crash_shutdown: another backend crashed, the server restarts',
  [SQLSTATE.cannot_connect_now]: 'cannot_connect_now: the server is starting up or in recovery',
  [SQLSTATE.insufficient_resources]: 'insufficient_resources',
  [SQLSTATE.disk_full]: 'disk_full',
  [SQLSTATE.out_of_memory]: 'out_of_memory',
  [SQLSTATE.too_many_connections]: 'too_many_connections',
  [SQLSTATE.connection_exception]: 'connection_exception',
  [SQLSTATE.sqlclient_unable_to_establish_sqlconnection]: 'sqlclient_unable_to_establish_sqlconnection',
  [SQLSTATE.connection_does_not_exist]: 'connection_does_not_exist',
  [SQLSTATE.sqlserver_rejected_establishment_of_sqlconnection]: 'sqlserver_rejected_establishment_of_sqlconnection',
  [SQLSTATE.connection_failure]: 'connection_failure',
  [SQLSTATE.protocol_violation]: 'protocol_violation: usually a connection cut mid-message',
  [SQLSTATE.system_error]: 'system_error',
  [SQLSTATE.io_error]: 'io_error',
  [SQLSTATE.internal_error]: 'internal_error: rare, but a retry usually gets past it',
};

/** Node-level errors of a socket that went away or never came. */
export const RETRYABLE_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/** BucardoError codes of a run that lost a race with the applications or another runner: redone. */
const RACED_CODES = new Set(['state_changed']);

/** True when the failure is transient (connection, shutdown, contention). */
export function isRetryable(e: unknown): boolean {
  for (let cur: unknown = e, depth = 0; cur && depth < 5; depth++) {
    if (cur instanceof BucardoError && (cur.code === 'unreachable' || RACED_CODES.has(cur.code))) return true;
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && (code in RETRYABLE_SQLSTATES || RETRYABLE_NODE_CODES.has(code))) return true;
    const msg = cur instanceof Error ? cur.message : '';
    if (/Connection terminated|connection (is )?closed|Client has encountered a connection error|not queryable|timeout expired/i.test(msg)) return true;
    cur = (cur as { cause?: unknown }).cause;
  }
  return false;
}

/** SQLSTATEs of contention with other transactions: the run lost a race, not a resource. */
const CONTENTION_SQLSTATES = new Set<string>([SQLSTATE.deadlock_detected, SQLSTATE.serialization_failure, SQLSTATE.lock_not_available]);

/**
 * True for a deadlock, serialization failure or lock timeout: retried at once for the
 * first attempts (waiting only adds lag; the other transaction has gone on by then).
 */
export function isContention(e: unknown): boolean {
  for (let cur: unknown = e, depth = 0; cur && depth < 5; depth++) {
    if (cur instanceof BucardoError && RACED_CODES.has(cur.code)) return true;
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && CONTENTION_SQLSTATES.has(code)) return true;
    cur = (cur as { cause?: unknown }).cause;
  }
  return false;
}

/** Delay before retry `attempt` (1-based): 0.5 s doubling to 30 s, with +-30 % jitter. */
export function backoffMs(attempt: number, capMs = 30_000): number {
  const base = Math.min(capMs, 500 * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.7 + Math.random() * 0.6));
}
