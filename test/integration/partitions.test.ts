/**
 * Issue 10, partitioned tables: writes that name the partitioned table and writes aimed
 * straight at a partition (INSERT, UPDATE, DELETE, COPY, TRUNCATE), at every level of a
 * sub-partitioned table, rows moving between partitions, partitions attached after an
 * apply, a partition missing on a receiver, and partitions named in the relgroup.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { useClusters, simpleTopology, writeTopology, type TestDb } from '../helpers/env.js';
import { applyOk, runOnce, assertSame } from '../helpers/install.js';
import { runCli } from '../helpers/cli.js';

const env = useClusters(['a', 'b', 'c']);

// payments by month (range), the first quarter split again by amount (sub-partitions)
const DDL = `
CREATE TABLE public.payment (id integer NOT NULL, paid date NOT NULL, amount numeric NOT NULL, note text,
  PRIMARY KEY (id, paid, amount)) PARTITION BY RANGE (paid);
CREATE TABLE public.payment_q1 PARTITION OF public.payment FOR VALUES FROM ('2024-01-01') TO ('2024-04-01') PARTITION BY RANGE (amount);
CREATE TABLE public.payment_q1_small PARTITION OF public.payment_q1 FOR VALUES FROM (0) TO (100);
CREATE TABLE public.payment_q1_large PARTITION OF public.payment_q1 FOR VALUES FROM (100) TO (MAXVALUE);
CREATE TABLE public.payment_p2024_04 PARTITION OF public.payment FOR VALUES FROM ('2024-04-01') TO ('2024-05-01');
CREATE TABLE public.payment_p2024_05 PARTITION OF public.payment FOR VALUES FROM ('2024-05-01') TO ('2024-06-01');
`;
const T = ['public.payment'];

async function copyInto(d: TestDb, table: string, rows: string): Promise<void> {
  const c = new pg.Client(d.cluster.clientConfig(d.dbname));
  await c.connect();
  try {
    await pipeline(Readable.from([rows]), c.query(copyFrom(`COPY ${table} (id, paid, amount, note) FROM STDIN`)));
  } finally {
    await c.end();
  }
}

const count = async (d: TestDb, where = 'true') => (await d.one(`SELECT count(*)::int AS n FROM public.payment WHERE ${where}`)).n as number;

test('every write reaches the receivers whether it names the partitioned table or a partition, at any level', async () => {
  const [a, b, c] = await env.fresh('parts', DDL);
  const file = writeTopology(simpleTopology({ sources: [a, b], targets: [c], tables: T }));
  await applyOk(file);
  // through the partitioned table, and straight into partitions
  await a.query(`INSERT INTO public.payment SELECT i, date '2024-01-01' + (i % 150), (i % 200), 'p' FROM generate_series(1, 300) i`);
  await a.query(`INSERT INTO public.payment_p2024_05 VALUES (1000, '2024-05-03', 10, 'direct')`);
  await a.query(`INSERT INTO public.payment_q1_small VALUES (1001, '2024-02-03', 5, 'sub-partition')`);
  await copyInto(a, 'public.payment_p2024_04', '2000\t2024-04-02\t7\tcopied\n2001\t2024-04-03\t8\tcopied\n');
  await runOnce(file);
  await assertSame([a, b, c], T, 'inserts');
  assert.equal(await count(c), 304);
  // updates and deletes naming partitions; a row moving between partitions through the parent
  await b.query(`UPDATE public.payment_p2024_04 SET note = 'updated on b' WHERE id = 2000`);
  await b.query(`DELETE FROM public.payment_q1_large WHERE id BETWEEN 100 AND 120`);
  await a.query(`UPDATE public.payment SET paid = '2024-05-20' WHERE id = 1001`); // q1_small -> p2024_05
  await a.query(`UPDATE public.payment_q1_small SET amount = amount + 1 WHERE id = 5`); // a key change inside a partition
  await runOnce(file);
  await assertSame([a, b, c], T, 'updates');
  assert.equal((await c.one(`SELECT tableoid::regclass::text AS p FROM public.payment WHERE id = 1001`)).p, 'payment_p2024_05');
  // TRUNCATE of one leaf, of a sub-partitioned partition, then of the whole table
  const q1 = await count(c, `paid < '2024-04-01'`);
  assert.ok(q1 > 0);
  await b.query(`TRUNCATE public.payment_p2024_04`);
  await runOnce(file);
  await assertSame([a, b, c], T, 'truncate of a leaf');
  assert.equal(await count(c, `paid >= '2024-04-01' AND paid < '2024-05-01'`), 0);
  assert.equal(await count(c, `paid < '2024-04-01'`), q1, 'the other partitions keep their rows');
  await a.query(`TRUNCATE public.payment_q1`);
  await runOnce(file);
  await assertSame([a, b, c], T, 'truncate of a sub-partitioned partition');
  assert.equal(await count(c, `paid < '2024-04-01'`), 0);
  assert.ok((await count(c)) > 0);
  await b.query(`BEGIN; TRUNCATE public.payment; INSERT INTO public.payment VALUES (1, '2024-05-01', 1, 'after'); COMMIT`);
  await runOnce(file);
  await assertSame([a, b, c], T, 'truncate of the partitioned table');
  assert.equal(await count(c), 1);
  // the change logs are empty once consumed
  const again = await runOnce(file);
  assert.doesNotMatch(again.stdout, /INFO {2}run /);
});

test('a partition attached after an apply is a plan change; one missing on a receiver is a plan error naming the database', async () => {
  const [a, b] = await env.fresh('attach', DDL, ['a', 'b']);
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: T }));
  await applyOk(file);
  for (const d of [a, b]) await d.query(`CREATE TABLE public.payment_p2024_06 PARTITION OF public.payment FOR VALUES FROM ('2024-06-01') TO ('2024-07-01')`);
  const plan = await runCli(['plan', '-f', file, '--format', 'json']);
  assert.equal(plan.code, 0, plan.out);
  const changes = JSON.parse(plan.stdout).changes as { database: string; action: string; object: string }[];
  assert.ok(
    changes.some((ch) => ch.database === 'a' && ch.action === 'create' && /on public\.payment_p2024_06$/.test(ch.object)),
    plan.stdout,
  );
  await applyOk(file);
  await a.query(`INSERT INTO public.payment_p2024_06 VALUES (1, '2024-06-02', 3, 'june')`);
  await runOnce(file);
  await assertSame([a, b], T);
  // a partition only a has
  await a.query(`CREATE TABLE public.payment_p2024_07 PARTITION OF public.payment FOR VALUES FROM ('2024-07-01') TO ('2024-08-01')`);
  const bad = await runCli(['plan', '-f', file]);
  assert.equal(bad.code, 1, bad.out);
  assert.match(bad.out, /partitioned table public\.payment \(sync s1\) lacks partition public\.payment_p2024_07 on database b/);
  assert.doesNotMatch(bad.out, /No changes/);
});

test('a relgroup that names a partition, or matches partitions only, is refused with the table to name instead', async () => {
  const [a, b] = await env.fresh('named', DDL, ['a', 'b']);
  for (const tables of [['public.payment_p2024_04'], [{ match: 'public.payment_p*' }]]) {
    const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables }));
    const r = await runCli(['plan', '-f', file]);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /partition.* of public\.payment/);
    assert.match(r.out, /public\.payment instead/);
  }
});

test('onetimecopy and compare of a partitioned table', async () => {
  const [a, b] = await env.fresh('partcopy', DDL, ['a', 'b']);
  await a.query(`INSERT INTO public.payment SELECT i, date '2024-01-01' + (i % 150), (i % 200), 'p' FROM generate_series(1, 500) i`);
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: T }));
  await applyOk(file);
  const r = await runOnce(file);
  assert.match(r.stdout, /copied=public\.payment/);
  await assertSame([a, b], T);
  const cmp = await runCli(['compare', 's1', '-f', file]);
  assert.equal(cmp.code, 0, cmp.out);
  await b.query(`DELETE FROM public.payment_q1_small WHERE id = 1`);
  const diff = await runCli(['compare', 's1', '-f', file]);
  assert.equal(diff.code, 2, diff.out);
});

test("a key changed by the application's BEFORE trigger is captured; a nullable key column is refused by plan", async () => {
  const ddl = `CREATE TABLE public.doc (id integer PRIMARY KEY, code text, body text);
    CREATE FUNCTION public.renumber() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.body = 'renumber' THEN NEW.id := NEW.id + 1000; END IF; RETURN NEW; END $$;
    CREATE TRIGGER renumber BEFORE UPDATE ON public.doc FOR EACH ROW EXECUTE FUNCTION public.renumber();`;
  const [a, b] = await env.fresh('beforekey', ddl, ['a', 'b']);
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ['public.doc'] }));
  await applyOk(file);
  await a.query(`INSERT INTO public.doc VALUES (1, 'x', 'one'), (2, 'y', 'two')`);
  await runOnce(file);
  await a.query(`UPDATE public.doc SET body = 'renumber' WHERE id = 1`); // the statement never names id
  await runOnce(file);
  await assertSame([a, b], ['public.doc']);
  assert.deepEqual(
    (await b.query(`SELECT id FROM public.doc ORDER BY id`)).rows.map((r: { id: number }) => r.id),
    [2, 1001],
  );
  // key: [code] where code is nullable
  const nullable = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: [{ name: 'public.doc', key: ['code'] }], name: 'other' }));
  const r = await runCli(['plan', '-f', nullable]);
  assert.equal(r.code, 1, r.out);
  assert.match(r.out, /key column code of table public\.doc is nullable on database a/);
  assert.match(r.out, /SET NOT NULL/);
});
