/**
 * One error type for everything the engine reports to a person. The CLI prints
 * `message` (and `hint`) without a stack trace unless BUCARDO_DEBUG=1; anything that is
 * not a BucardoError is a bug and is printed with its stack.
 */
export class BucardoError extends Error {
  /** snake_case, stable: tests and JSON output match on it. */
  readonly code: string;
  /** What to do next, one sentence, when the message alone does not say it. */
  readonly hint?: string;
  /** JSON-safe details (never a password). */
  readonly details?: Record<string, unknown>;

  constructor(code: string, message: string, opts: { hint?: string; details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'BucardoError';
    this.code = code;
    this.hint = opts.hint;
    this.details = opts.details;
  }
}

/** A problem found in a topology file, with its position (1-based line and column). */
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
