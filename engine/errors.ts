/**
 * One error type for everything the engine reports to a person. The CLI prints
 * `message` (and `hint`) without a stack trace unless BUCARDO_DEBUG=1; anything that is
 * not a BucardoError is a bug and is printed with its stack. PostgreSQL's own error codes
 * are named in ./sqlstate.ts.
 */

/**
 * Every code a BucardoError carries: snake_case and stable, since tests match on them and
 * `run --log-format json` prints a failed run's code. One code per kind of problem; a new
 * one goes here, so near-duplicates are seen.
 */
export type ErrorCode =
  // the topology file
  | 'invalid_topology'
  | 'topology_not_found'
  | 'topology_unreadable'
  | 'bad_name'
  | 'bad_url'
  // the command line and the files it names
  | 'bad_flag'
  | 'bad_plan_file'
  | 'stale_plan'
  | 'needs_approval'
  | 'file_exists'
  | 'write_failed'
  | 'missing_package'
  | 'metrics_port'
  | 'demo_failed'
  // databases and what is installed in them
  | 'unreachable'
  | 'unknown_sync'
  | 'unknown_database'
  | 'sync_disabled'
  | 'not_installed'
  | 'missing_table'
  | 'bad_key'
  | 'column_mismatch'
  | 'query_failed'
  | 'compare_failed'
  // apply
  | 'plan_errors'
  | 'apply_locked'
  | 'apply_failed'
  // runs
  | 'run_failed'
  | 'kick_timeout'
  | 'conflict_abort'
  | 'constraint_violation'
  | 'state_changed'
  | 'details_changed'
  | 'source_replaced'
  | 'not_supported'
  // custom code (SPEC section 6)
  | 'module_missing'
  | 'module_changed'
  | 'module_invalid'
  | 'conflict_handler_failed'
  | 'conflict_handler_invalid'
  | 'conflict_handler_timeout'
  | 'hook_failed'
  | 'hook_invalid'
  | 'hook_timeout'
  | 'transform_failed'
  | 'bad_columns';

export class BucardoError extends Error {
  /** What kind of problem; see ErrorCode. */
  readonly code: ErrorCode;
  /** What to do next, one sentence, when the message alone does not say it. */
  readonly hint?: string;
  /** JSON-safe details (never a password). */
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, opts: { hint?: string; details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'BucardoError';
    this.code = code;
    this.hint = opts.hint;
    this.details = opts.details;
  }
}

/**
 * A sync name that the topology file does not define (kick, status, compare, run --sync):
 * one message wherever it is met, listing the syncs that are there.
 */
export function makeUnknownSyncError(topology: { file: string; syncs: ReadonlyMap<string, unknown> }, name: string): BucardoError {
  const known = [...topology.syncs.keys()].join(', ') || 'none';
  return new BucardoError('unknown_sync', `sync ${name} is not in ${topology.file} (syncs: ${known})`, {
    hint: 'check the name, or run bucardo status to list the syncs',
  });
}

export interface Problem {
  file: string;
  line: number;
  col: number;
  message: string;
  hint?: string;
}

/** The topology file is invalid: every problem found, not the first only. */
export class TopologyError extends BucardoError {
  readonly problems: Problem[];
  constructor(problems: Problem[]) {
    super('invalid_topology', problems.map(formatProblem).join('\n'));
    this.name = 'TopologyError';
    this.problems = problems;
  }
}

export function formatProblem(p: Problem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.message}${p.hint ? ` (${p.hint})` : ''}`;
}

/**
 * A PostgreSQL error as one readable line: message, SQLSTATE, detail and hint.
 * Works on whatever pg throws (a DatabaseError, a connection error, anything).
 */
export function describePgError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const pe = e as Error & { code?: string; detail?: string; hint?: string; errors?: Error[] };
  // AggregateError from net.connect when every address fails: take the first.
  if (!pe.message && Array.isArray(pe.errors) && pe.errors.length) return describePgError(pe.errors[0]);
  let s = pe.message;
  if (pe.code) s += ` [${pe.code}]`;
  if (pe.detail) s += `; detail: ${pe.detail}`;
  if (pe.hint) s += `; hint: ${pe.hint}`;
  return s;
}
