import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useClusters, simpleTopology, writeTopology } from '../helpers/env.js';
import { applyOk, runOnce, assertSame } from '../helpers/install.js';
import { runCli } from '../helpers/cli.js';

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
  // deltas are purged once consumed (after the run, on the maintenance connection; run
  // --once waits for it before it exits)
  const d = await a.query(
    `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'bucardo_main' AND c.relname LIKE 'delta_%'`,
  );
  assert.equal(d.rows.length, 2);
  for (const { relname } of d.rows) {
    const left = await a.query(`SELECT count(*)::int AS n FROM bucardo_main."${relname}"`);
    assert.equal(left.rows[0].n, 0, `${relname} still holds consumed deltas`);
  }
});

const BIG_DDL = `
CREATE TYPE public."mood ""x""" AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE public."Big table.x" ("order" integer PRIMARY KEY, "näme" text NOT NULL, qty integer, m public."mood ""x""",
  seq bigint GENERATED ALWAYS AS IDENTITY, twice integer GENERATED ALWAYS AS (qty * 2) STORED);
CREATE TABLE public.plain (id bigint PRIMARY KEY, v numeric, at timestamptz);
CREATE TABLE public.nokey (code text NOT NULL, v integer);
`;
const BIG_TABLES = [`public."Big table.x"`, 'public.plain', 'public.nokey'];

test('large change sets stream straight into the targets: deletes, key changes, identity, generated and user-defined types', async () => {
  // Above DIRECT_MIN_ROWS (5,000) pending keys from one source to targets only, a run
  // deletes the keys and COPYs the rows into the tables (delta.ts applyDirect), in key
  // order where the source has a key index (Big table.x, plain) and by hash join where it
  // has none (nokey, keyed by an explicit column).
  const [a, b, c] = await env.fresh('owbig', BIG_DDL);
  const tables = [{ schema: 'public', table: 'Big table.x' }, 'public.plain', { schema: 'public', table: 'nokey', key: ['code'] }];
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b, c], tables }));
  await applyOk(file);
  await a.query(
    `INSERT INTO public."Big table.x" ("order", "näme", qty, m) SELECT i, 'n ' || i, i, (ARRAY['sad','ok','happy'])[1 + i % 3]::public."mood ""x""" FROM generate_series(1, 12000) i`,
  );
  await a.query(`INSERT INTO public.plain SELECT i, i / 7.0, '2026-01-01'::timestamptz + i * interval '1 min' FROM generate_series(1, 6000) i`);
  await a.query(`INSERT INTO public.nokey SELECT 'k' || i, i FROM generate_series(1, 7000) i`);
  const r = await runOnce(file);
  assert.match(r.stdout, /rows=25000/);
  await assertSame([a, b, c], BIG_TABLES, 'after the first load');
  // a row only the target has, outside the change set, stays
  await b.query(`INSERT INTO public.plain VALUES (-1, 0, now())`);
  await a.query(`BEGIN;
    UPDATE public."Big table.x" SET qty = qty + 1, m = 'happy' WHERE "order" % 2 = 0;
    UPDATE public."Big table.x" SET "order" = "order" + 100000 WHERE "order" BETWEEN 100 AND 199;
    DELETE FROM public."Big table.x" WHERE "order" BETWEEN 1000 AND 1499;
    INSERT INTO public."Big table.x" ("order", "näme", qty) SELECT i, 'new', NULL FROM generate_series(20001, 21000) i;
    COMMIT`);
  await a.query(`UPDATE public.plain SET v = -v WHERE id > 500`);
  await a.query(`DELETE FROM public.plain WHERE id <= 100`);
  await a.query(`UPDATE public.nokey SET v = v + 1 WHERE v > 1000`);
  await a.query(`UPDATE public.nokey SET code = code || '!' WHERE v < 10`);
  await runOnce(file);
  await assertSame([a, b, c], BIG_TABLES.slice(0, 1), 'after the large change set');
  await assertSame([a, c], BIG_TABLES, 'after the large change set');
  const kept = await b.query(`SELECT count(*)::int AS n FROM public.plain WHERE id = -1`);
  assert.equal(kept.rows[0].n, 1);
  const n = await b.query(`SELECT count(*)::int AS n, count(*) FILTER (WHERE "order" > 100000)::int AS moved FROM public."Big table.x"`);
  assert.deepEqual(n.rows[0], { n: 12000 - 500 + 1000, moved: 100 });
  // a TRUNCATE and a large reload in one transaction: the targets are emptied, then loaded
  await a.query(`BEGIN; TRUNCATE public.plain; INSERT INTO public.plain SELECT i, -i, now() FROM generate_series(1, 8000) i; COMMIT`);
  await runOnce(file);
  await assertSame([a, b, c], ['public.plain'], 'after TRUNCATE and reload');
});

const PART_DDL = `
CREATE TABLE public.events (region text NOT NULL, id integer NOT NULL, v text, PRIMARY KEY (region, id)) PARTITION BY LIST (region);
CREATE TABLE public.events_eu PARTITION OF public.events FOR VALUES IN ('eu');
CREATE TABLE public.events_us PARTITION OF public.events FOR VALUES IN ('us');
CREATE TABLE public.plainkeys (id integer PRIMARY KEY, v text);
`;

test('key-changing updates: within a table, across the partitions of a partitioned one; plan stays clean', async () => {
  // Capture keeps only the new rows of an UPDATE, plus a row trigger for old keys (capture.ts);
  // a row moving to another partition fires no row-level UPDATE trigger, so a partitioned
  // table keeps its old rows in the statement trigger instead.
  const [a, b] = await env.fresh('owkey', PART_DDL);
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ['public.events', 'public.plainkeys'] }));
  await applyOk(file);
  const plan = await runCli(['plan', '-f', file, '--detailed-exitcode']);
  assert.equal(plan.code, 0, plan.stdout + plan.stderr);
  assert.match(plan.stdout, /No changes\./);
  await a.query(`INSERT INTO public.events SELECT 'eu', i, 'v' || i FROM generate_series(1, 10) i`);
  await a.query(`INSERT INTO public.plainkeys SELECT i, 'v' || i FROM generate_series(1, 10) i`);
  await runOnce(file);
  await a.query(`UPDATE public.events SET region = 'us' WHERE id <= 5`);
  await a.query(`UPDATE public.events SET id = id + 100 WHERE id = 6`);
  await a.query(`UPDATE public.plainkeys SET id = id + 100 WHERE id <= 3`);
  await a.query(`UPDATE public.plainkeys SET id = id, v = 'same key' WHERE id = 4`);
  await runOnce(file);
  await assertSame([a, b], ['public.events', 'public.plainkeys'], 'after key changes');
  const moved = await b.query(`SELECT count(*) FILTER (WHERE region = 'us')::int AS us, count(*)::int AS n FROM public.events`);
  assert.deepEqual(moved.rows[0], { us: 5, n: 10 });
});
