import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useClusters, writeTopology, type TestDb } from '../helpers/env.js';
import { applyOk, runOnce, assertSame } from '../helpers/install.js';

const env = useClusters(['a', 'b']);

const DDL = `CREATE TABLE public.items (id integer PRIMARY KEY, name text NOT NULL);`;

function cascade(a: TestDb, b: TestDb, c: TestDb, makedelta: boolean) {
  return {
    version: 1,
    databases: { a: { url: a.url }, b: { url: b.url, makedelta }, c: { url: c.url } },
    relgroups: { g: { tables: ['public.items'] } },
    syncs: {
      first: { relgroup: 'g', sources: ['a'], targets: ['b'] },
      second: { relgroup: 'g', sources: ['b'], targets: ['c'], onetimecopy: 'never' },
    },
  };
}

for (const makedelta of [true, false]) {
  test(`cascade a -> b -> c ${makedelta ? 'with' : 'without'} makedelta on b`, async () => {
    const [a, b] = await env.fresh(`casc_${makedelta}`, DDL);
    const [c] = await env.fresh(`casc_${makedelta}_c`, DDL, ['b']);
    const file = writeTopology(cascade(a, b, c, makedelta));
    await applyOk(file);
    await a.query(`INSERT INTO public.items SELECT i, 'from a' FROM generate_series(1, 50) i`);
    await b.query(`INSERT INTO public.items VALUES (1000, 'from b')`);
    await runOnce(file, ['--sync', 'first']);
    await runOnce(file, ['--sync', 'second']);
    const onC = (await c.query(`SELECT count(*)::int AS n FROM public.items`)).rows[0].n;
    if (makedelta) {
      await assertSame([b, c], ['public.items']);
      assert.equal(onC, 51);
      // the sync that wrote the rows on b does not read them back (no ping-pong)
      const r = await runOnce(file, ['--sync', 'first']);
      assert.doesNotMatch(r.stdout, /INFO {2}run /);
    } else {
      assert.equal(onC, 1, "only b's own write reaches c");
    }
    // deltas do not pile up on b: every consumer confirmed
    await runOnce(file);
    const left = await b.query(`SELECT sum(n_live_tup)::int AS n FROM pg_stat_user_tables WHERE schemaname = 'bucardo_main' AND relname LIKE 'delta_%'`);
    assert.ok((left.rows[0].n ?? 0) <= 51);
  });
}
