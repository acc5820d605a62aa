/**
 * Shared CLI plumbing: which topology file, how errors are printed, exit codes (the
 * shared flags are in flags.ts). The engine never prints; commands print what the engine
 * returns.
 */
import { BucardoError, TopologyError } from '../engine/errors.js';
import { redactSecrets } from '../engine/connect.js';

/** Exit codes shared by every command (SPEC section 3). */
export const EXIT = { ok: 0, error: 1, changes: 2, differences: 2 } as const;

/** The topology path as the user gave it: flag > BUCARDO_FILE > ./bucardo.yaml. */
export function topologyPath(opts: { file?: string }): string {
  return opts.file ?? process.env.BUCARDO_FILE ?? 'bucardo.yaml';
}

/**
 * Writes to stderr with any password taken out: every error, warning and note, commander's
 * own errors included (main.ts), goes through here.
 */
export function printStderr(text: string): void {
  process.stderr.write(redactSecrets(text));
}

/** Prints an error the way users see it: one sentence, a hint, no stack unless BUCARDO_DEBUG=1. */
export function printError(e: unknown): void {
  const debug = process.env.BUCARDO_DEBUG === '1';
  if (e instanceof TopologyError) {
    printStderr(`${e.message}\n`);
    printStderr(`${e.problems.length} problem${e.problems.length === 1 ? '' : 's'} found.\n`);
  } else if (e instanceof BucardoError) {
    printStderr(`error: ${e.message}\n`);
    if (e.hint) printStderr(`hint: ${e.hint}\n`);
  } else {
    printStderr(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    if (!debug) printStderr('hint: this looks like a bug in bucardo; rerun with BUCARDO_DEBUG=1 for details and report it\n');
  }
  if (debug && e instanceof Error && e.stack) printStderr(`${e.stack}\n`);
}

/**
 * Wraps a command's action: its return value is the exit code; a thrown error is
 * printed and exits 1. Output is flushed before exiting.
 */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<number | undefined> | number | undefined) {
  return async (...args: A): Promise<void> => {
    let code: number;
    try {
      code = (await fn(...args)) ?? EXIT.ok;
    } catch (e) {
      printError(e);
      code = EXIT.error;
    }
    process.exitCode = code;
  };
}

/** True when colours may be used on this stream. */
export function useColor(stream: NodeJS.WriteStream, noColorFlag = false): boolean {
  if (noColorFlag || process.env.NO_COLOR || process.env.TERM === 'dumb') return false;
  if (process.env.FORCE_COLOR && process.env.FORCE_COLOR !== '0') return true;
  return Boolean(stream.isTTY);
}
