/**
 * rebuild_index for whole-table copies (engine/runner/sql/indexes.ts says what and why):
 * drop the indexes of the table on every receiver, run the copy, re-create them, all in
 * the receivers' open write transactions.
 */
import type pg from 'pg';
import { SAVE_INDEXES_SQL, type SavedIndex } from './sql/indexes.js';
import { qualify } from '../sql/ident.js';

/** `table`: its name on every receiver, or per receiver (a target may hold it under another name). */
export async function withIndexesDropped<T>(
  receivers: pg.Client[],
  table: { schema: string; name: string } | { schema: string; name: string }[],
  fn: () => Promise<T>,
): Promise<T> {
  const saved = await Promise.all(
    receivers.map(async (c, i) => {
      const t = Array.isArray(table) ? table[i] : table;
      const r = await c.query<SavedIndex>(SAVE_INDEXES_SQL, [qualify(t.schema, t.name)]);
      if (r.rows.length) await c.query(r.rows.map((x) => x.drop).join(';\n'));
      return r.rows;
    }),
  );
  const out = await fn();
  // one receiver's indexes after another would serialize on nothing: build them in parallel
  await Promise.all(receivers.map((c, i) => (saved[i].length ? c.query(saved[i].map((x) => x.create).join(';\n')) : undefined)));
  return out;
}
