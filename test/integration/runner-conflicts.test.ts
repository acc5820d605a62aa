import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useClusters, simpleTopology, writeTopology, type TestDb } from '../helpers/env.js';
import { applyOk, runOnce, assertSame } from '../helpers/install.js';
import { runCli } from '../helpers/cli.js';

const env = useClusters(['a', 'b', 'c']);

const DDL = `
CREATE TABLE public.items (id integer PRIMARY KEY, name text NOT NULL, qty integer);
CREATE TABLE public.tags (code text PRIMARY KEY, label text);
`;
const TABLES = ['public.items', 'public.tags'];

/** Two sources (a, b) and a target (c), 10 items everywhere after a first run. */
async function setup(tag: string, conflict: unknown): Promise<{ a: TestDb; b: TestDb; c: TestDb; file: string }> {
  const [a, b, c] = await env.fresh(tag, DDL);
  const file = writeTopology(simpleTopology({ sources: [a, b], targets: [c], tables: TABLES, sync: { conflict } }));
  await applyOk(file);
  await a.query(`INSERT INTO public.items SELECT i, 'item ' || i, 0 FROM generate_series(1, 10) i`);
  await a.query(`INSERT INTO public.tags VALUES ('t1', 'first')`);
  await runOnce(file);
  await assertSame([a, b, c], TABLES, 'seeded');
  return { a, b, c, file };
}

const name = async (d: TestDb, id: number) => (await d.query('SELECT name FROM public.items WHERE id = $1', [id])).rows[0]?.name ?? null;
const names = (dbs: TestDb[], id: number) => Promise.all(dbs.map((d) => name(d, id)));

test('latest: the newest change wins per row, deletes versus updates both ways', async () => {
  const { a, b, c, file } = await setup('cf_latest', 'latest');
  await a.query(`UPDATE public.items SET name = 'a1' WHERE id = 1`);
  await b.query(`UPDATE public.items SET name = 'b1' WHERE id = 1`); // later: b wins
  await b.query(`UPDATE public.items SET name = 'b2' WHERE id = 2`);
  await a.query(`UPDATE public.items SET name = 'a2' WHERE id = 2`); // later: a wins
  await b.query(`UPDATE public.items SET name = 'b3' WHERE id = 3`);
  await a.query(`DELETE FROM public.items WHERE id = 3`); // delete after update: deleted everywhere
  await a.query(`DELETE FROM public.items WHERE id = 4`);
  await b.query(`UPDATE public.items SET name = 'b4' WHERE id = 4`); // update after delete: row comes back on a
  await a.query(`INSERT INTO public.items VALUES (50, 'a50', 0)`);
  await b.query(`INSERT INTO public.items VALUES (50, 'b50', 0)`); // insert/insert: b later
  const r = await runOnce(file);
  assert.match(r.stdout, /conflicts=5/);
  assert.match(r.stdout, /conflict sync=s1 table=public\.items key=\{"id":1\} winner=b/);
  await assertSame([a, b, c], TABLES, 'after conflicts');
  assert.deepEqual(await names([a, b, c], 1), ['b1', 'b1', 'b1']);
  assert.equal(await name(c, 2), 'a2');
  assert.equal(await name(c, 3), null);
  assert.equal(await name(a, 4), 'b4');
  assert.equal(await name(a, 50), 'b50');
  const cf = await c.query(`SELECT key, winner FROM bucardo_main.conflict ORDER BY key->>'id'`);
  assert.deepEqual(
    cf.rows.map((x) => [x.key.id, x.winner]),
    [
      [1, 'b'],
      [2, 'a'],
      [3, 'a'],
      [4, 'b'],
      [50, 'b'],
    ],
  );
  // nothing ping-pongs
  const again = await runOnce(file);
  assert.doesNotMatch(again.stdout, /INFO {2}run /);
});

test('priority: the first listed source that changed the key wins', async () => {
  const { a, b, c, file } = await setup('cf_prio', { priority: ['b', 'a'] });
  await b.query(`UPDATE public.items SET name = 'b1' WHERE id = 1`);
  await a.query(`UPDATE public.items SET name = 'a1' WHERE id = 1`); // later, but b has priority
  await a.query(`UPDATE public.items SET name = 'a2' WHERE id = 2`); // no conflict
  await b.query(`DELETE FROM public.items WHERE id = 3`);
  await a.query(`UPDATE public.items SET name = 'a3' WHERE id = 3`); // b's delete wins
  await runOnce(file);
  await assertSame([a, b, c], TABLES);
  assert.equal(await name(a, 1), 'b1');
  assert.equal(await name(b, 2), 'a2');
  assert.equal(await name(a, 3), null);
});

test('latest_table: the source with the newest change to the table wins all its conflicts', async () => {
  const { a, b, c, file } = await setup('cf_ltable', 'latest_table');
  await a.query(`UPDATE public.items SET name = 'a1' WHERE id = 1`);
  await b.query(`UPDATE public.items SET name = 'b1' WHERE id = 1`); // newer than a's change of id 1...
  await a.query(`UPDATE public.items SET name = 'a9' WHERE id = 9`); // ...but a changed the table last
  await runOnce(file);
  await assertSame([a, b, c], TABLES);
  assert.equal(await name(c, 1), 'a1');
});

test('latest_sync: one winner for the whole run, by the newest change in any table', async () => {
  const { a, b, c, file } = await setup('cf_lsync', 'latest_sync');
  await a.query(`UPDATE public.items SET name = 'a1' WHERE id = 1`);
  await b.query(`UPDATE public.items SET name = 'b1' WHERE id = 1`);
  await b.query(`UPDATE public.items SET name = 'b2' WHERE id = 2`);
  await a.query(`UPDATE public.items SET name = 'a2' WHERE id = 2`);
  await a.query(`UPDATE public.tags SET label = 'newest' WHERE code = 't1'`); // a's is the newest change of the run
  await runOnce(file);
  await assertSame([a, b, c], TABLES);
  assert.deepEqual(await names([c], 1), ['a1']);
  assert.deepEqual(await names([c], 2), ['a2']);
});

test('random: one winner per row, the same on every database, recorded', async () => {
  const { a, b, c, file } = await setup('cf_random', 'random');
  for (let i = 1; i <= 10; i++) {
    await a.query(`UPDATE public.items SET name = 'a' WHERE id = $1`, [i]);
    await b.query(`UPDATE public.items SET name = 'b' WHERE id = $1`, [i]);
  }
  await runOnce(file);
  await assertSame([a, b, c], TABLES);
  const winners = (await c.query(`SELECT winner, count(*)::int AS n FROM bucardo_main.conflict GROUP BY 1`)).rows;
  assert.equal(
    winners.reduce((s, w) => s + w.n, 0),
    10,
  );
  const rows = (await c.query(`SELECT name, count(*)::int AS n FROM public.items GROUP BY 1`)).rows;
  assert.ok(rows.every((r) => r.name === 'a' || r.name === 'b'));
});

test('skip: conflicting keys stay as they are everywhere and are reported; the rest replicates', async () => {
  const { a, b, c, file } = await setup('cf_skip', 'skip');
  await a.query(`UPDATE public.items SET name = 'a1' WHERE id = 1`);
  await b.query(`UPDATE public.items SET name = 'b1' WHERE id = 1`);
  await a.query(`UPDATE public.items SET name = 'a2' WHERE id = 2`);
  const r = await runOnce(file);
  assert.match(r.stdout, /winner=\(skipped\)/);
  assert.deepEqual(await names([a, b, c], 1), ['a1', 'b1', 'item 1']);
  assert.deepEqual(await names([a, b, c], 2), ['a2', 'a2', 'a2']);
  const cf = await c.query(`SELECT winner FROM bucardo_main.conflict`);
  assert.deepEqual(cf.rows, [{ winner: null }]);
});

test('abort: the run fails before any write, reports the keys, and status says failed until a run succeeds', async () => {
  const { a, b, c, file } = await setup('cf_abort', 'abort');
  await a.query(`UPDATE public.items SET name = 'a1' WHERE id = 1`);
  await b.query(`UPDATE public.items SET name = 'b1' WHERE id = 1`);
  await a.query(`UPDATE public.items SET name = 'a2' WHERE id = 2`);
  const r = await runOnce(file, [], 1);
  assert.match(r.stdout, /conflicting key.*\{"id":1\}.*abort/);
  assert.deepEqual(await names([a, b, c], 1), ['a1', 'b1', 'item 1']);
  assert.deepEqual(await names([a, b, c], 2), ['a2', 'item 2', 'item 2'], 'nothing was written');
  const st = await runCli(['status', '-f', file, '--format', 'json']);
  assert.equal(st.code, 0, st.stderr);
  const s = JSON.parse(st.stdout).syncs[0];
  assert.equal(s.state, 'failed');
  assert.match(s.last_run.error, /abort/);
  assert.ok(s.pending >= 3, `pending ${s.pending}`);
  // the operator settles the row by hand on b (same value as a), switches strategy: the next run succeeds
  await b.query(`UPDATE public.items SET name = 'a1' WHERE id = 1`);
  const file2 = writeTopology(simpleTopology({ sources: [a, b], targets: [c], tables: TABLES, sync: { conflict: 'latest' } }));
  await applyOk(file2); // the runner runs what apply installed
  await runOnce(file2);
  await assertSame([a, b, c], TABLES);
  const st2 = JSON.parse((await runCli(['status', '-f', file2, '--format', 'json'])).stdout).syncs[0];
  assert.equal(st2.state, 'idle');
  assert.equal(st2.pending, 0);
  assert.equal(st2.last_run.error, null);
  const text = await runCli(['status', '-f', file2]);
  assert.match(text.stdout, /^SYNC\s+STATE/);
  assert.match(text.stdout, /s1\s+idle/);
});

test('a per-table conflict override beats the sync strategy; metrics are served', async () => {
  const [a, b, c] = await env.fresh('cf_override', DDL);
  const file = writeTopology(
    simpleTopology({
      sources: [a, b],
      targets: [c],
      sync: { conflict: 'latest' },
      tables: [{ name: 'public.items', conflict: { priority: ['a', 'b'] } }, 'public.tags'],
    }),
  );
  await applyOk(file);
  await a.query(`INSERT INTO public.items VALUES (1, 'seed', 0)`);
  await a.query(`INSERT INTO public.tags VALUES ('t1', 'seed')`);
  await runOnce(file);
  await a.query(`UPDATE public.items SET name = 'a1' WHERE id = 1`);
  await b.query(`UPDATE public.items SET name = 'b1' WHERE id = 1`); // later, but a has priority for items
  await a.query(`UPDATE public.tags SET label = 'a' WHERE code = 't1'`);
  await b.query(`UPDATE public.tags SET label = 'b' WHERE code = 't1'`); // later: latest for tags
  const { freePort } = await import('../../cli/demo/clusters.js');
  const port = await freePort();
  const { spawnCli } = await import('../helpers/cli.js');
  const { waitFor } = await import('../helpers/env.js');
  const runner = spawnCli(['run', '-f', file, '--metrics-port', String(port)]);
  try {
    await waitFor(async () => (await c.query(`SELECT label FROM public.tags`)).rows[0]?.label === 'b', 'the run');
    await assertSame([a, b, c], TABLES);
    assert.equal(await name(c, 1), 'a1');
    const text: string = await waitFor(async () => {
      const t = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return /bucardo_conflicts_total\{sync="s1"\} 2/.test(t) ? t : '';
    }, 'metrics');
    assert.match(text, /bucardo_rows_total\{sync="s1"\} \d+/);
  } finally {
    runner.kill('SIGTERM');
    await runner.exited;
  }
});
