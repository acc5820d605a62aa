import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useClusters, simpleTopology, writeTopology } from '../helpers/env.js';
import { applyOk, runOnce, assertSame, fixedFingerprint } from '../helpers/install.js';
import { TYPES_DDL, TYPES_INSERT } from '../helpers/typematrix.js';

const env = useClusters(['a', 'b']);

test('a matrix of types round-trips exactly, whatever the session defaults of the databases', async () => {
  const [a, b] = await env.fresh('types', TYPES_DDL);
  // odd defaults on both sides: the runner's fixed session settings must make them irrelevant
  await a.query(`ALTER DATABASE ${a.dbname} SET TimeZone = 'Asia/Kolkata'`);
  await b.query(`ALTER DATABASE ${b.dbname} SET TimeZone = 'America/St_Johns'`);
  await b.query(`ALTER DATABASE ${b.dbname} SET DateStyle = 'SQL, DMY'`);
  await b.query(`ALTER DATABASE ${b.dbname} SET IntervalStyle = 'sql_standard'`);
  await b.query(`ALTER DATABASE ${b.dbname} SET extra_float_digits = -15`);
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ['public.matrix'] }));
  await applyOk(file);
  await a.query(`SET TimeZone = 'Pacific/Chatham'`);
  await a.query(TYPES_INSERT);
  await runOnce(file);
  assert.equal(await fixedFingerprint(b, 'public.matrix'), await fixedFingerprint(a, 'public.matrix'));
  const gen = await b.query(`SELECT doubled FROM public.matrix WHERE id = 1`);
  assert.equal(gen.rows[0].doubled, 14, 'generated columns are computed on the receiver');
  await a.query(`UPDATE public.matrix SET big = big || 'more', f8 = '-0', p = 9 WHERE id IN (1, 2)`);
  await runOnce(file);
  assert.equal(await fixedFingerprint(b, 'public.matrix'), await fixedFingerprint(a, 'public.matrix'));
});

const ODD_DDL = `
CREATE SCHEMA "Sales EU";
CREATE TABLE "Sales EU"."Order.Lines ""v2""" ("order id" integer, "Line#" text, "select" text, "ünïcødé ✓" text, PRIMARY KEY ("order id", "Line#"));
CREATE TABLE public."${'t'.repeat(63)}" ("${'c'.repeat(63)}" uuid PRIMARY KEY, "from" text);
CREATE TABLE public."where" (k text PRIMARY KEY, "group" int);
`;

test('odd identifiers and composite, text and uuid keys, with key-changing updates', async () => {
  const [a, b] = await env.fresh('odd', ODD_DDL);
  const tables = [{ schema: 'Sales EU', table: 'Order.Lines "v2"' }, `public."${'t'.repeat(63)}"`, 'public."where"'];
  const sqlNames = [`"Sales EU"."Order.Lines ""v2"""`, `public."${'t'.repeat(63)}"`, `public."where"`];
  const file = writeTopology(simpleTopology({ sources: [a, b], tables }));
  await applyOk(file);
  await a.query(`INSERT INTO "Sales EU"."Order.Lines ""v2""" SELECT i, 'L' || i, 's', 'ü' || i FROM generate_series(1, 20) i`);
  await b.query(`INSERT INTO public."${'t'.repeat(63)}" SELECT gen_random_uuid(), 'x' FROM generate_series(1, 20)`);
  await a.query(`INSERT INTO public."where" VALUES ('a', 1), ('b', 2), ('O''Brien "q"', 3), ('', 4)`);
  await runOnce(file);
  await assertSame([a, b], sqlNames, 'after inserts');
  await b.query(`UPDATE "Sales EU"."Order.Lines ""v2""" SET "Line#" = "Line#" || '-x' WHERE "order id" < 5`);
  await a.query(`UPDATE "Sales EU"."Order.Lines ""v2""" SET "order id" = "order id" + 100 WHERE "order id" > 15`);
  await a.query(`UPDATE public."${'t'.repeat(63)}" SET "${'c'.repeat(63)}" = gen_random_uuid() WHERE "from" = 'x'`);
  await b.query(`UPDATE public."where" SET k = k || '!' WHERE "group" > 2`);
  await runOnce(file);
  await assertSame([a, b], sqlNames, 'after key changes');
});
