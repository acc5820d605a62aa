/**
 * Transforms (SPEC section 6): the rows one receiving database takes pass through the
 * user's `transform(row, ctx)` on their way, as a stream between the source's
 * `COPY ... TO STDOUT` and the receiver's `COPY ... FROM STDIN` (text format both ways).
 * Rows are parsed, handed over and written back one input chunk at a time, so memory
 * stays bounded whatever the table's size and the COPY streams keep their backpressure.
 *
 * `row` maps each sent column to its PostgreSQL text form, or null. The function returns
 * the row to write (same key; a column it leaves out is written as NULL; numbers,
 * booleans, Dates, Buffers and objects become their text, ISO, bytea hex and JSON forms),
 * or null to send nothing for that row (the receiver's row, if any, is left as it is).
 * Rows deleted on the source (and rows moving out of a filter) are not passed: the delete
 * goes through. A throw, a changed key, an unknown column, or a call taking longer than
 * the hook time limit (30 s; BUCARDO_HOOK_TIMEOUT_MS for tests) fails the run, which then
 * changes nothing; the message names the module, the table and the key.
 */
import { Transform } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { ModuleRef } from '../topology/types.js';
import { loadRegisteredFunction } from '../topology/modules.js';
import { BucardoError } from '../errors.js';
import { userCodeTimeoutMs, withTimeLimit, UserCodeTimeout } from './custom/call.js';

/** What a transform stream needs to know about the rows it carries. */
export interface TransformTarget {
  module: ModuleRef;
  sync: string;
  /** Display name of the source table. */
  table: string;
  /** The receiving database. */
  database: string;
  /** The fields of each row, in order, then `trailing` fields of bucardo's own. */
  columns: string[];
  keyColumns: string[];
  /**
   * Staged rows carry three more fields (present, time of the change, sender): a row whose
   * present field is `f` (deleted, or out of the filter) goes through untouched. 0: a
   * whole-table copy, every row present.
   */
  trailing: 0 | 3;
}

/** The user's function, loaded from the content apply registered (hash-checked), as a stream. */
export async function makeTransformStream(target: TransformTarget): Promise<Transform> {
  const fn = await loadRegisteredFunction(target.module, target.sync);
  const ctx = Object.freeze({ sync: target.sync, table: target.table, database: target.database });
  const n = target.columns.length;
  const known = new Set(target.columns);
  const keyIdx = target.keyColumns.map((k) => target.columns.indexOf(k));
  const limit = userCodeTimeoutMs();
  const decoder = new StringDecoder('utf8');
  let rest = '';

  const fail = (fields: (string | null)[], what: string, cause?: unknown, rule = '') => {
    const key = JSON.stringify(Object.fromEntries(target.keyColumns.map((k, i) => [k, fields[keyIdx[i]]])));
    return new BucardoError(
      'transform_failed',
      `transform ${target.module.path} ${what} (table ${target.table}, key ${key}, database ${target.database}, sync ${target.sync}); nothing was written`,
      {
        hint: `${rule}fix the module, then run bucardo plan and bucardo apply; the run is retried and changes nothing until then`,
        details: { module: target.module.path, table: target.table, database: target.database, key },
        cause,
      },
    );
  };

  /** The line to write for what the function returned (`raw`: the line's fields as read), or null. */
  const written = (fields: (string | null)[], raw: string[], out: unknown): string | null => {
    if (out === null || out === undefined) return null;
    if (typeof out !== 'object' || Array.isArray(out))
      throw fail(
        fields,
        `returned ${Array.isArray(out) ? 'an array' : typeof out} instead of a row object or null`,
        undefined,
        'transform(row, ctx) returns the row to write, or null to send nothing; ',
      );
    const o = out as Record<string, unknown>;
    for (const k in o)
      if (!known.has(k))
        throw fail(
          fields,
          `returned column ${JSON.stringify(k)}, which is not sent (sent: ${target.columns.join(', ')})`,
          undefined,
          'a transform returns the columns it was given; ',
        );
    const values = new Array<string>(raw.length);
    for (let i = 0; i < n; i++) {
      const v = toText(o[target.columns[i]]);
      values[i] = encodeField(v);
      if (keyIdx.includes(i) && v !== fields[i])
        throw fail(
          fields,
          `changed the key (column ${target.columns[i]} became ${JSON.stringify(v)})`,
          undefined,
          'a transform must return the row with the same key (receivers find their rows by it); ',
        );
    }
    for (let i = n; i < raw.length; i++) values[i] = raw[i];
    return values.join('\t');
  };
  const threw = (fields: (string | null)[], e: unknown) =>
    e instanceof UserCodeTimeout
      ? fail(fields, `took longer than ${limit} ms`)
      : fail(fields, `threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`, e);

  /**
   * One row's line out, or null (nothing sent); a promise only when the function returned
   * one (awaiting every row would cost a turn of the event loop per row).
   */
  const one = (line: string): string | null | Promise<string | null> => {
    const raw = line.split('\t');
    if (target.trailing && raw[n] === 'f') return line;
    const fields = new Array<string | null>(n);
    const row: Record<string, string | null> = {};
    for (let i = 0; i < n; i++) row[target.columns[i]] = fields[i] = decodeField(raw[i]);
    let out: unknown;
    try {
      out = fn(row, ctx);
    } catch (e) {
      throw threw(fields, e);
    }
    if (out && typeof (out as Promise<unknown>).then === 'function') {
      return withTimeLimit(out as Promise<unknown>, limit).then(
        (o) => written(fields, raw, o),
        (e) => Promise.reject(threw(fields, e)),
      );
    }
    return written(fields, raw, out);
  };

  const lines = async (text: string, push: (s: string) => void) => {
    const parts = (rest + text).split('\n');
    rest = parts.pop()!;
    const out: string[] = [];
    for (const line of parts) {
      let l = one(line);
      if (l !== null && typeof l !== 'string') l = await l;
      if (l !== null) out.push(l);
    }
    if (out.length) push(`${out.join('\n')}\n`);
  };

  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      lines(decoder.write(chunk), (s) => this.push(s)).then(() => cb(), cb);
    },
    flush(cb) {
      lines(decoder.end() + (rest ? '\n' : ''), (s) => this.push(s)).then(() => cb(), cb);
    },
  });
}

const UNESCAPE: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

/** One field of COPY's text format: `\N` is NULL, backslash escapes decoded. */
export function decodeField(f: string): string | null {
  if (f === '\\N') return null;
  if (!f.includes('\\')) return f;
  return f.replace(/\\(.)/g, (_, c: string) => UNESCAPE[c] ?? c);
}

/** A value as one field of COPY's text format. */
export function encodeField(v: string | null): string {
  if (v === null) return '\\N';
  return /[\\\n\r\t]/.test(v) ? v.replace(/[\\\n\r\t]/g, (c) => (c === '\\' ? '\\\\' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\t')) : v;
}

/** A value a transform returned, as PostgreSQL's text input for it. */
export function toText(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'boolean') return v ? 't' : 'f';
  if (v instanceof Date) return v.toISOString();
  if (Buffer.isBuffer(v)) return `\\x${v.toString('hex')}`;
  return JSON.stringify(v);
}
