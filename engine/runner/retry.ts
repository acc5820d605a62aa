/**
 * Which failures are worth retrying, and how long to wait. The runner never exits because
 * of a database: every failure stops only the sync that hit it, which retries after a
 * jittered, growing delay; these tables only decide whether `--once` retries too.
 */
import { BucardoError } from '../errors.js';

/**
 * SQLSTATEs that say "try again later" rather than "something is wrong with the setup".
 * (graphile-worker keeps the same kind of table: src/lib.ts RETRYABLE_ERROR_CODES.)
 */
export const RETRYABLE_SQLSTATES: Record<string, string> = {
  '40001': 'serialization_failure: a concurrent write under SERIALIZABLE; the run is redone',
  '40P01': 'deadlock_detected: with a user transaction; the run is redone',
  '55P03': 'lock_not_available: lock_timeout hit on a user table',
  '57014': 'query_canceled: statement_timeout or a cancel from an operator',
  '57P01': 'admin_shutdown: the server is shutting down (fast/smart stop)',
  '57P02': 'crash_shutdown: another backend crashed, the server restarts',
  '57P03': 'cannot_connect_now: the server is starting up or in recovery',
  '53000': 'insufficient_resources',
  '53100': 'disk_full',
  '53200': 'out_of_memory',
  '53300': 'too_many_connections',
  '08000': 'connection_exception',
  '08001': 'sqlclient_unable_to_establish_sqlconnection',
  '08003': 'connection_does_not_exist',
  '08004': 'sqlserver_rejected_establishment_of_sqlconnection',
  '08006': 'connection_failure',
  '08P01': 'protocol_violation: usually a connection cut mid-message',
  '58000': 'system_error',
  '58030': 'io_error',
  XX000: 'internal_error: rare, but a retry usually gets past it',
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
const CONTENTION_SQLSTATES = new Set(['40P01', '40001', '55P03']);

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
