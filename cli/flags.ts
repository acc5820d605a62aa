/**
 * The flags that several commands share, and the parsers of flag values. Every value is
 * checked by commander while it parses (`choices` for a fixed set of words, `argParser`
 * with the parsers below for numbers), so a bad value stops the command before it reads
 * a file or connects anywhere. A parser's error is a BucardoError (`bad_flag`): one
 * sentence naming the flag and the value, printed by printError, exit 1.
 */
import { Option, type Command } from 'commander';
import { BucardoError } from '../engine/errors.js';
import { parseDuration } from '../engine/topology/duration.js';

/** Adds `-f/--file PATH` to a command. */
export function fileOption(cmd: Command): Command {
  return cmd.option('-f, --file <path>', 'topology file (default: $BUCARDO_FILE, else ./bucardo.yaml)');
}

/** `--no-color`: `opts.color` is false when given. */
export function noColorOption(): Option {
  return new Option('--no-color', 'no colours (also when not on a terminal or with NO_COLOR)');
}

/** `--format <format>` (or another flag of that shape): one of `formats`, default the first. */
export function formatOption(formats: readonly string[], description: string, flags = '--format <format>'): Option {
  return new Option(flags, description).choices(formats).default(formats[0]);
}

/** A repeatable flag: each use adds its value (`--sync a --sync b`). */
export function collectValues(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function badFlag(flag: string, value: string, what: string): BucardoError {
  return new BucardoError('bad_flag', `${flag} ${value} is not ${what}`);
}

/** A TCP port, 0-65535 (0: any free port). */
export function parsePort(flag: string): (value: string) => number {
  return (value) => {
    const port = Number(value);
    if (!/^\d+$/.test(value) || port > 65535) throw badFlag(flag, value, 'a port number (0-65535)');
    return port;
  };
}

/** A whole number, at least `min`. */
export function parseCount(flag: string, what: string, min = 1): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) throw badFlag(flag, value, what);
    return n;
  };
}

/**
 * Seconds, more than 0 and at least `min`: a number of seconds (fractions allowed), or a
 * duration written as in the topology file (`30s`, `5m`, `1m30s`).
 */
export function parseSeconds(flag: string, what: string, min = 0): (value: string) => number {
  return (value) => {
    const text = value.trim();
    const ms = /^\d+(\.\d+)?$/.test(text) ? Number(text) * 1000 : parseDuration(text);
    if (ms === null || !(ms > 0) || ms / 1000 < min) throw badFlag(flag, value, what);
    return ms / 1000;
  };
}
