/**
 * Rows of a `COPY ... TO STDOUT` in text format, parsed in Node, for receivers that are
 * not PostgreSQL (foreign.ts): the same stream that feeds a PostgreSQL receiver's COPY
 * FROM, so both read the source in the same snapshot with the same SQL. Rows come in
 * batches, so a large table never sits in memory whole.
 */
import type pg from 'pg';
import { StringDecoder } from 'node:string_decoder';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { to as copyTo } from 'pg-copy-streams';

/** One row: each field's text, null for NULL. */
export type TextRow = (string | null)[];

const ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\' };

/** One field of COPY's text format, its backslash escapes undone (`\N` alone is NULL). */
export function unescapeCopyField(f: string): string | null {
  if (f === '\\N') return null;
  if (!f.includes('\\')) return f;
  return f.replace(/\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)/g, (_, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8));
    return ESCAPES[e] ?? e;
  });
}

/**
 * Runs `sql` (a COPY ... TO STDOUT, text format) on `client` and hands its rows to
 * `onBatch` in batches of at most `batchSize`, waiting for each; resolves with the rows read.
 */
export async function readCopyRows(client: pg.Client, sql: string, batchSize: number, onBatch: (rows: TextRow[]) => Promise<void> | void): Promise<number> {
  const decoder = new StringDecoder('utf8');
  let rest = '';
  let batch: TextRow[] = [];
  let n = 0;
  const take = (text: string) => {
    const lines = (rest + text).split('\n');
    rest = lines.pop()!;
    for (const line of lines) batch.push(line.split('\t').map(unescapeCopyField));
  };
  const flush = async () => {
    if (!batch.length) return;
    const b = batch;
    batch = [];
    n += b.length;
    await onBatch(b);
  };
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      take(decoder.write(chunk));
      if (batch.length < batchSize) return cb();
      flush().then(() => cb(), cb);
    },
    final(cb) {
      take(decoder.end());
      flush().then(() => cb(), cb);
    },
  });
  await pipeline(client.query(copyTo(sql)), sink);
  return n;
}
