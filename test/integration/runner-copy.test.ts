import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useClusters, simpleTopology, writeTopology, type TestDb } from '../helpers/env.js';
import { applyOk, runOnce, assertSame } from '../helpers/install.js';

const env = useClusters(['a', 'b']);

const DDL = `
CREATE TABLE public.items (id integer PRIMARY KEY, name text NOT NULL, qty integer);
CREATE TABLE public.child (id integer PRIMARY KEY, item integer REFERENCES public.items (id), note text);
CREATE SEQUENCE public.ids START 1;
`;
const TABLES = ['public.items', 'public.child'];

const count = async (d: TestDb, t = 'public.items') => (await d.query(`SELECT count(*)::int AS n FROM ${t}`)).rows[0].n as number;

/** `count` small write transactions on `db`: inserts, updates and deletes. */
function writer(db: TestDb, start: number, total = 300) {
  let n = 0;
  const done = (async () => {
    while (n < total) {
      const id = start + n++;
      await db.query(`INSERT INTO public.items VALUES ($1::int, 'live ' || $1::text, 1)`, [id]);
      await db.query(`UPDATE public.items SET qty = qty + 1 WHERE id = $1`, [Math.max(1, id - 3000)]);
      if (n % 5 === 0) await db.query(`DELETE FROM public.items WHERE id = $1`, [id - 2]);
    }
  })();
  return { done };
}

for (const mode of ['always', 'if_empty'] as const) {
  test(`onetimecopy ${mode}: whole tables copied in the delta snapshot while writes go on`, async () => {
    const [a, b, c] = [...(await env.fresh(`otc_${mode}`, DDL)), ...(await env.fresh(`otc_${mode}_c`, DDL, ['b']))];
    (c as { name: string }).name = 'c';
    await a.query(`INSERT INTO public.items SELECT i, 'pre ' || i, i FROM generate_series(1, 20000) i`);
    await a.query(`INSERT INTO public.child SELECT i, i, 'c' FROM generate_series(1, 100) i`);
    await b.query(`INSERT INTO public.items VALUES (-1, 'only on b', 0)`);
    const file = writeTopology(simpleTopology({ sources: [a], targets: [b, c], tables: TABLES, sync: { onetimecopy: mode } }));
    await applyOk(file);
    const w = writer(a, 100_000);
    await runOnce(file); // copies while the writer goes on
    await w.done;
    await runOnce(file);
    if (mode === 'always') {
      await assertSame([a, b, c], TABLES, 'always: b replaced, c filled');
    } else {
      await assertSame([a, c], TABLES, 'if_empty: c was empty, so filled');
      assert.equal(await count(b, 'public.items WHERE id = -1'), 1, 'b kept its own row');
      assert.ok((await count(b)) < 20000, 'b (not empty) was not copied into');
    }
    const pending = await b.query(`SELECT bool_or(copy_pending) AS p FROM bucardo_main.sync_relation`);
    assert.equal(pending.rows[0].p, false);
  });
}

test('onetimecopy with rebuild_index: loaded without indexes, which come back the same', async () => {
  const extra = `CREATE UNIQUE INDEX items_name ON public.items (name);
CREATE INDEX items_qty ON public.items (qty) WHERE qty > 0;
COMMENT ON INDEX public.items_qty IS 'kept in place: a comment would be lost';
ALTER TABLE public.child REPLICA IDENTITY USING INDEX child_pkey;`;
  const [a, b] = await env.fresh('otc_rebuild', DDL + extra);
  await a.query(`INSERT INTO public.items SELECT i, 'pre ' || i, i FROM generate_series(1, 5000) i`);
  await a.query(`INSERT INTO public.child SELECT i, i, 'c' FROM generate_series(1, 100) i`);
  const defs = `SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def, i.indisreplident AS ri,
      (SELECT conname FROM pg_constraint WHERE conindid = i.indexrelid AND contype IN ('p', 'u')) AS con
    FROM pg_index i WHERE i.indrelid IN ('public.items'::regclass, 'public.child'::regclass) ORDER BY 1`;
  const before = (await b.query(defs)).rows;
  const oids = async () =>
    (
      await b.query(
        `SELECT indexrelid::regclass::text AS name, indexrelid::int AS oid FROM pg_index WHERE indrelid IN ('public.items'::regclass, 'public.child'::regclass) ORDER BY 1`,
      )
    ).rows;
  const oidsBefore = await oids();
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: TABLES, sync: { onetimecopy: 'if_empty', rebuild_index: true } }));
  await applyOk(file);
  await runOnce(file);
  await assertSame([a, b], TABLES, 'copied');
  assert.deepEqual((await b.query(defs)).rows, before, 'the same indexes, constraints and replica identity');
  const rebuilt = (await oids()).filter((x, i) => x.oid !== oidsBefore[i].oid).map((x) => x.name);
  assert.deepEqual(
    rebuilt,
    ['child_pkey', 'items_name'],
    'rebuilt: the unreferenced key and the unique index; kept: the key a foreign key references, the commented index',
  );
});

test('onetimecopy never: only changes after apply are replicated', async () => {
  const [a, b] = await env.fresh('otc_never', DDL);
  await a.query(`INSERT INTO public.items SELECT i, 'pre ' || i, i FROM generate_series(1, 100) i`);
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: TABLES, sync: { onetimecopy: 'never' } }));
  await applyOk(file);
  await a.query(`UPDATE public.items SET name = 'changed' WHERE id <= 10`);
  await runOnce(file);
  assert.equal(await count(b), 10);
});

for (const deletemethod of ['truncate', 'delete', 'truncate_cascade'] as const) {
  test(`fullcopy with deletemethod ${deletemethod} replaces the targets' rows`, async () => {
    const [a, b] = await env.fresh(`fc_${deletemethod}`, DDL);
    await a.query(`INSERT INTO public.items SELECT i, 'src ' || i, i FROM generate_series(1, 1000) i`);
    await a.query(`INSERT INTO public.child SELECT i, i, 'c' FROM generate_series(1, 10) i`);
    await b.query(`INSERT INTO public.items VALUES (-5, 'stale', 0)`);
    const topo = simpleTopology({ sources: [a], targets: [b], tables: TABLES, sequences: ['public.ids'], sync: { kind: 'fullcopy', deletemethod } });
    const file = writeTopology(topo);
    await applyOk(file);
    await a.query(`SELECT nextval('public.ids') FROM generate_series(1, 42)`);
    const r = await runOnce(file);
    assert.match(r.stdout, /rows=1010/);
    await assertSame([a, b], TABLES);
    assert.equal((await b.query(`SELECT last_value::int AS v FROM public.ids`)).rows[0].v, 42);
    await a.query(`DELETE FROM public.child WHERE id > 5`);
    await runOnce(file);
    await assertSame([a, b], TABLES);
  });
}

test('TRUNCATE on a source empties the table everywhere, then later rows follow', async () => {
  const [a, b] = await env.fresh('trunc', DDL);
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: TABLES }));
  await applyOk(file);
  await a.query(`INSERT INTO public.items SELECT i, 'x', i FROM generate_series(1, 100) i`);
  await runOnce(file);
  await a.query(`TRUNCATE public.items CASCADE`);
  await a.query(`INSERT INTO public.items VALUES (7, 'after truncate', 1)`);
  await runOnce(file);
  await assertSame([a, b], TABLES);
  assert.equal(await count(b), 1);
});

test('sequences: every database gets the highest value of any source, even with no row changed', async () => {
  const [a, b] = await env.fresh('seq', DDL);
  const file = writeTopology(simpleTopology({ sources: [a, b], tables: TABLES, sequences: ['public.ids'] }));
  await applyOk(file);
  await a.query(`SELECT nextval('public.ids') FROM generate_series(1, 10)`);
  await b.query(`SELECT nextval('public.ids') FROM generate_series(1, 25)`);
  await runOnce(file);
  for (const d of [a, b]) assert.equal((await d.query(`SELECT last_value::int AS v FROM public.ids`)).rows[0].v, 25);
  assert.equal((await a.query(`SELECT nextval('public.ids')::int AS v`)).rows[0].v, 26);
});

test("multi-source: a copy or TRUNCATE into a source keeps that source's own pending changes", async () => {
  const [a, b] = await env.fresh('otc_ms', DDL);
  await a.query(`INSERT INTO public.items SELECT i, 'a' || i, i FROM generate_series(1, 100) i`);
  await b.query(`INSERT INTO public.items SELECT i, 'b-before-apply', i FROM generate_series(1001, 1005) i`);
  const file = writeTopology(simpleTopology({ sources: [a, b], tables: TABLES, sync: { onetimecopy: 'always' } }));
  await applyOk(file);
  await b.query(`INSERT INTO public.items VALUES (2000, 'b pending', 1)`);
  await runOnce(file);
  await assertSame([a, b], TABLES, 'after the copy');
  assert.equal(await count(a), 101);
  await a.query(`TRUNCATE public.items CASCADE`);
  await a.query(`INSERT INTO public.items VALUES (1, 'a after truncate', 1)`);
  await b.query(`INSERT INTO public.items VALUES (3000, 'b pending', 1)`);
  await runOnce(file);
  await assertSame([a, b], TABLES, 'after the truncate');
  assert.equal(await count(a), 2);
});
