import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useClusters, simpleTopology, writeTopology } from '../helpers/env.js';
import { applyOk, runOnce, assertSame } from '../helpers/install.js';

const env = useClusters(['a', 'b', 'c']);

const DDL = `
CREATE TABLE public.items (id integer PRIMARY KEY, name text NOT NULL, qty integer);
CREATE TABLE public.tags (code text PRIMARY KEY, label text);
`;
const TABLES = ['public.items', 'public.tags'];

test('one source to two targets: inserts, updates, key changes, deletes', async () => {
  const [a, b, c] = await env.fresh('ow', DDL);
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b, c], tables: TABLES }));
  await applyOk(file);
  await a.query(`INSERT INTO public.items SELECT i, 'item ' || i, i FROM generate_series(1, 200) i`);
  await a.query(`INSERT INTO public.tags SELECT 'tag' || i, 'label ' || i FROM generate_series(1, 50) i`);
  const r = await runOnce(file);
  assert.match(r.stdout, /rows=250/);
  await assertSame([a, b, c], TABLES, 'after inserts');
  await a.query(`UPDATE public.items SET qty = qty * 10 WHERE id % 3 = 0`);
  await a.query(`UPDATE public.items SET id = id + 1000 WHERE id BETWEEN 1 AND 5`);
  await a.query(`UPDATE public.items SET id = 1, name = 'moved' WHERE id = 6`);
  await a.query(`DELETE FROM public.items WHERE id BETWEEN 100 AND 149`);
  await a.query(`DELETE FROM public.tags WHERE code = 'tag3'`);
  await runOnce(file);
  await assertSame([a, b, c], TABLES, 'after updates');
  // writes on a target stay there
  await b.query(`INSERT INTO public.items VALUES (777, 'on b', 7)`);
  await runOnce(file);
  assert.equal((await a.query('SELECT count(*)::int AS n FROM public.items WHERE id = 777')).rows[0].n, 0);
  // deltas are purged once consumed
  const d = await a.query(`SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'bucardo_main' AND c.relname LIKE 'delta_%'`);
  assert.equal(d.rows[0].n, 2);
});
