import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useClusters, simpleTopology, writeTopology, waitFor, type TestDb } from '../helpers/env.js';
import { applyOk, sameRows, assertSame } from '../helpers/install.js';
import { runCli, spawnCli } from '../helpers/cli.js';

const env = useClusters(['a', 'b', 'c']);

const DDL = `
CREATE TABLE public.items (id bigint PRIMARY KEY, name text NOT NULL, n integer NOT NULL DEFAULT 0);
CREATE TABLE public.counter (id integer PRIMARY KEY, n bigint NOT NULL);
INSERT INTO public.counter VALUES (1, 0);
`;
const TABLES = ['public.items', 'public.counter'];
const count = async (d: TestDb) => (await d.query(`SELECT count(*)::int AS n FROM public.items`)).rows[0].n as number;

test('the daemon wakes on commits (autokick), answers kick --wait, reports status, and exits 0 on SIGTERM', async () => {
  const [a, b, c] = await env.fresh('daemon', DDL);
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b, c], tables: TABLES }));
  await applyOk(file);
  const runner = spawnCli(['run', '-f', file, '--log-format', 'json']);
  try {
    await a.query(`INSERT INTO public.items SELECT i, 'x' FROM generate_series(1, 100) i`);
    await waitFor(async () => (await count(c)) === 100, 'autokicked rows on c');
    const k = await runCli(['kick', 's1', '-f', file, '--wait', '30']);
    assert.equal(k.code, 0, k.out);
    const st = await runCli(['status', '-f', file, '--format', 'json']);
    assert.equal(st.code, 0, st.out);
    const s = JSON.parse(st.stdout);
    assert.equal(s.format_version, '1');
    assert.deepEqual(Object.keys(s.syncs[0]).sort(), ['conflicts_total', 'enabled', 'lag_seconds', 'last_run', 'name', 'pending', 'state']);
    assert.ok(['idle', 'running'].includes(s.syncs[0].state));
    assert.deepEqual(Object.keys(s.syncs[0].last_run).sort(), ['conflicts', 'error', 'finished', 'rows', 'started']);
    assert.equal(s.syncs[0].last_run.rows, 100);
    const lines = runner
      .output()
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const run = lines.find((l) => l.event === 'run');
    assert.equal(run.sync, 's1');
    assert.deepEqual(run.rows_by_table, { 'public.items': 100 });
  } finally {
    runner.kill('SIGTERM');
    const exit = await runner.exited;
    assert.equal(exit.code, 0, runner.output().stdout + runner.output().stderr);
  }
});

test('kick --wait without a runner times out with exit 1', async () => {
  const [a, b] = await env.fresh('nokick', DDL, ['a', 'b']);
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: TABLES }));
  await applyOk(file);
  const k = await runCli(['kick', 's1', '-f', file, '--wait', '1']);
  assert.equal(k.code, 1);
  assert.match(k.stderr, /no runner finished a run of sync s1/);
});

test('SIGKILLed five times at random moments under a stream of writes, the runner loses and duplicates nothing', async () => {
  const [a, b, c] = await env.fresh('kill', DDL);
  const file = writeTopology(simpleTopology({ sources: [a, b], targets: [c], tables: TABLES, sync: { checktime: '1s' } }));
  await applyOk(file);
  let stop = false;
  const written = { a: 0, b: 0 };
  const stream = (d: TestDb, key: 'a' | 'b', base: number) =>
    (async () => {
      while (!stop) {
        const i = base + written[key]++;
        await d.query(`INSERT INTO public.items VALUES ($1::bigint, 'w', 0)`, [i]);
        await d.query(`UPDATE public.items SET n = n + 1 WHERE id = $1::bigint`, [i - 7]);
        if (key === 'a') await d.query(`UPDATE public.counter SET n = n + 1`);
        if (i % 11 === 0) await d.query(`DELETE FROM public.items WHERE id = $1::bigint`, [i - 3]);
      }
    })();
  const writers = [stream(a, 'a', 1_000_000), stream(b, 'b', 2_000_000)];
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let k = 0; k < 5; k++) {
    const r = spawnCli(['run', '-f', file]);
    await new Promise((res) => setTimeout(res, 300 + rand() * 1500));
    r.kill('SIGKILL');
    await r.exited;
  }
  stop = true;
  await Promise.all(writers);
  const r = spawnCli(['run', '-f', file]);
  try {
    await waitFor(() => sameRows([a, b, c], TABLES), 'convergence after the kills', 60_000, 300);
  } finally {
    r.kill('SIGTERM');
    assert.equal((await r.exited).code, 0);
  }
  await assertSame([a, b, c], TABLES);
  const expected =
    written.a +
    written.b -
    (
      await a.query(
        `SELECT count(*)::int AS n FROM generate_series(1000000, 2999999) i WHERE i % 11 = 0 AND ((i < 2000000 AND i - 1000000 < $1) OR (i >= 2000000 AND i - 2000000 < $2))`,
        [written.a, written.b],
      )
    ).rows[0].n;
  assert.ok(Math.abs((await count(c)) - expected) <= 2, `rows on c: ${await count(c)}, expected about ${expected}`);
  assert.equal(Number((await c.query(`SELECT n FROM public.counter`)).rows[0].n), Number((await a.query(`SELECT n FROM public.counter`)).rows[0].n));
});

test('two runners on one file never run a sync at once; status says running while the lock is held', async () => {
  const [a, b] = await env.fresh('tworunners', DDL, ['a', 'b']);
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: TABLES }));
  await applyOk(file);
  await a.query(`INSERT INTO public.items SELECT i, 'x' FROM generate_series(1, 5000) i`);
  const [r1, r2] = await Promise.all([runCli(['run', '-f', file, '--once']), runCli(['run', '-f', file, '--once'])]);
  assert.equal(r1.code, 0, r1.out);
  assert.equal(r2.code, 0, r2.out);
  const moved = [r1, r2].map((r) => (r.stdout.match(/rows=5000/g) ?? []).length);
  assert.deepEqual(moved.sort(), [0, 1], 'exactly one runner moved the rows');
  await assertSame([a, b], TABLES);
  const { syncLockKey } = await import('../../engine/runner/context.js');
  const pg = (await import('pg')).default;
  const holder = new pg.Client(a.cluster.clientConfig(a.dbname));
  await holder.connect();
  try {
    await holder.query('SELECT pg_advisory_lock($1::int, $2::int)', syncLockKey('main', 's1'));
    const st = JSON.parse((await runCli(['status', '-f', file, '--format', 'json'])).stdout);
    assert.equal(st.syncs[0].state, 'running');
  } finally {
    await holder.end();
  }
});
