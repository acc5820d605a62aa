/**
 * rebuild_index for whole-table copies (engine/runner/sql/indexes.ts says what and why):
 * drop the indexes of the table on every receiver, run the copy, re-create them, all in
 * the receivers' open write transactions.
 */
import type pg from 'pg';
import { SAVE_INDEXES_SQL, type SavedIndex } from './sql/indexes.js';
import { qualify } from '../sql/ident.js';

export async function withIndexesDropped<T>(receivers: pg.Client[], table: { schema: string; name: string }, fn: () => Promise<T>): Promise<T> {
  const saved = await Promise.all(
    receivers.map(async (c) => {
      const r = await c.query<SavedIndex>(SAVE_INDEXES_SQL, [qualify(table.schema, table.name)]);
      if (r.rows.length) await c.query(r.rows.map((x) => x.drop).join(';\n'));
      return r.rows;
    }),
  );
  const out = await fn();
  // one receiver's indexes after another would serialize on nothing: build them in parallel
  await Promise.all(receivers.map((c, i) => (saved[i].length ? c.query(saved[i].map((x) => x.create).join(';\n')) : undefined)));
  return out;
}
