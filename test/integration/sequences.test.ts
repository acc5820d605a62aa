/**
 * Issue 10, sequences across sources: targets follow the furthest value any source handed
 * out; a source is moved only to a value it could hand out itself, so the two ways users
 * give each source its own ids (INCREMENT BY n with different starts, disjoint
 * MINVALUE/MAXVALUE ranges) keep working and no two sources hand out the same id.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useClusters, simpleTopology, writeTopology, type TestDb } from '../helpers/env.js';
import { applyOk, runOnce, assertSame } from '../helpers/install.js';

const env = useClusters(['a', 'b', 'c']);

const table = `CREATE TABLE public.orders (id bigint PRIMARY KEY DEFAULT nextval('public.order_ids'), who text);`;
const insert = (d: TestDb, n: number) => d.query(`INSERT INTO public.orders (who) SELECT $1 FROM generate_series(1, $2)`, [d.name, n]);
const lastValue = async (d: TestDb) => (await d.one(`SELECT last_value::text AS v FROM public.order_ids`)).v as string;

test('INCREMENT BY 2 from different starts: each source keeps its own parity, the target follows the highest', async () => {
  const [a, b, c] = await env.fresh('seqpar', '');
  await a.query(`CREATE SEQUENCE public.order_ids START 1 INCREMENT BY 2; ${table}`);
  await b.query(`CREATE SEQUENCE public.order_ids START 2 INCREMENT BY 2; ${table}`);
  await c.query(`CREATE SEQUENCE public.order_ids; ${table}`);
  const file = writeTopology(simpleTopology({ sources: [a, b], targets: [c], tables: ['public.orders'], sequences: ['public.order_ids'] }));
  await applyOk(file);
  for (let round = 0; round < 3; round++) {
    await insert(a, 5 + round * 7);
    await insert(b, 3);
    await runOnce(file);
  }
  await assertSame([a, b, c], ['public.orders']);
  const rows = (await a.query(`SELECT id, who FROM public.orders`)).rows as { id: string; who: string }[];
  assert.ok(
    rows.every((r) => (BigInt(r.id) % 2n === 1n) === (r.who === 'a')),
    'every id keeps the parity of the source that made it',
  );
  assert.equal(BigInt(await lastValue(b)) % 2n, 0n);
  const highest = rows.reduce((m, r) => (BigInt(r.id) > m ? BigInt(r.id) : m), 0n);
  assert.ok(BigInt(await lastValue(c)) >= highest);
  assert.ok(BigInt(await lastValue(b)) >= highest - 1n, 'b moved past the highest id, on an even value');
});

test('disjoint MINVALUE/MAXVALUE ranges: each source is left in its range, runs never fail', async () => {
  const [a, b, c] = await env.fresh('seqrange', '');
  await a.query(`CREATE SEQUENCE public.order_ids MINVALUE 1 MAXVALUE 1000000; ${table}`);
  await b.query(`CREATE SEQUENCE public.order_ids MINVALUE 1000001 MAXVALUE 2000000 START 1000001; ${table}`);
  await c.query(`CREATE SEQUENCE public.order_ids; ${table}`);
  const file = writeTopology(simpleTopology({ sources: [a, b], targets: [c], tables: ['public.orders'], sequences: ['public.order_ids'] }));
  await applyOk(file);
  await insert(a, 10);
  await insert(b, 50);
  await runOnce(file);
  await insert(a, 10);
  await runOnce(file);
  await assertSame([a, b, c], ['public.orders']);
  assert.equal(await lastValue(a), '20');
  assert.equal(await lastValue(b), '1000050');
  assert.equal(await lastValue(c), '1000050');
});
