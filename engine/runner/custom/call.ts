/**
 * Calling a user's module function (SPEC section 6) with a time limit. A conflict handler
 * or hook that never settles must not hold a run, and with it the sync's fence and every
 * database's write transaction, for ever: after the limit the run fails (and rolls back).
 *
 * The limit can only stop waiting: a function that blocks the event loop (a synchronous
 * endless loop) blocks the whole runner, which no timer can interrupt. docs/custom-code.md
 * says so.
 */
import { describePgError } from '../../errors.js';

/** SPEC section 6: a handler or hook taking longer than this fails the run. */
export const USER_CODE_TIMEOUT_MS = 30_000;

/**
 * The limit in force: USER_CODE_TIMEOUT_MS, or BUCARDO_HOOK_TIMEOUT_MS for the test suite
 * only (a test of a handler that never returns should not wait 30 s). Not a setting:
 * documented as test-only in docs/custom-code.md.
 */
export function userCodeTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.BUCARDO_HOOK_TIMEOUT_MS);
  return Number.isInteger(v) && v > 0 ? v : USER_CODE_TIMEOUT_MS;
}

/** Thrown when the limit passed; `what` names the module and what it was doing. */
export class UserCodeTimeout extends Error {
  constructor(readonly ms: number) {
    super(`did not return within ${ms / 1000} s`);
    this.name = 'UserCodeTimeout';
  }
}

/**
 * `fn(...args)`, awaited at most `ms`. A synchronous throw and a rejected promise come out
 * as that error; past the limit, UserCodeTimeout (the call is abandoned, not stopped).
 */
export function callWithTimeout<T>(fn: (...a: unknown[]) => T | Promise<T>, args: unknown[], ms = userCodeTimeoutMs()): Promise<T> {
  return withTimeLimit(
    Promise.resolve().then(() => fn(...args)),
    ms,
  );
}

/** `p`, awaited at most `ms`; past that, UserCodeTimeout (for a result already in hand, as a transform's promise). */
export async function withTimeLimit<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new UserCodeTimeout(ms)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The user's error as one line: its message (a PostgreSQL error's with its code and detail; a thrown non-Error as text). */
export function describeUserError(e: unknown): string {
  if (e instanceof Error) return describePgError(e).split('\n')[0] || e.name;
  try {
    return typeof e === 'string' ? e : (JSON.stringify(e) ?? String(e));
  } catch {
    return String(e);
  }
}
