import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useClusters, waitFor, type TestDb } from '../helpers/env.js';
import { applyOk, sameRows, twoSyncTopology } from '../helpers/install.js';
import { spawnCli, runCli } from '../helpers/cli.js';

const env = useClusters(['a', 'b', 'down']);

const DDL = `CREATE TABLE public.items (id integer PRIMARY KEY, name text NOT NULL);`;
const count = async (d: TestDb) => (await d.query(`SELECT count(*)::int AS n FROM public.items`)).rows[0].n as number;

test('a stopped target stops only its sync, which catches up once the cluster is back', async () => {
  const [a, b, down] = await env.fresh('outage', DDL);
  const file = twoSyncTopology(a, b, down, { checktime: '1s' });
  await applyOk(file);
  const runner = spawnCli(['run', '-f', file]);
  try {
    await a.query(`INSERT INTO public.items SELECT i, 'first' FROM generate_series(1, 10) i`);
    await waitFor(async () => (await count(b)) === 10 && (await count(down)) === 10, 'first rows on both targets');
    await env.cluster('down').stop();
    await a.query(`INSERT INTO public.items SELECT i, 'during outage' FROM generate_series(11, 50) i`);
    await waitFor(async () => (await count(b)) === 50, 'the other sync keeps going', 30_000);
    await waitFor(() => /ERROR run sync=to_down failed/.test(runner.output().stdout), 'the failing sync logs its error');
    assert.equal(runner.child.exitCode, null, 'the runner does not exit because of a database');
    await env.cluster('down').start();
    await a.query(`INSERT INTO public.items SELECT i, 'after' FROM generate_series(51, 60) i`);
    await waitFor(() => sameRows([a, b, down], ['public.items']), 'catch-up after the outage', 60_000, 300);
  } finally {
    runner.kill('SIGTERM');
    assert.equal((await runner.exited).code, 0, runner.output().stdout);
  }
});

test('run --once with an unreachable target: the other sync completes, exit 1, status shows the failure', async () => {
  const [a, b, down] = await env.fresh('outage_once', DDL);
  const file = twoSyncTopology(a, b, down);
  await applyOk(file);
  await a.query(`INSERT INTO public.items SELECT i, 'x' FROM generate_series(1, 10) i`);
  await env.cluster('down').stop();
  try {
    const r = await runCli(['run', '-f', file, '--once'], { timeout: 120_000 });
    assert.equal(r.code, 1, r.out);
    assert.match(r.stdout, /run sync=to_b rows=10/);
    assert.match(r.stdout, /ERROR run sync=to_down failed.*cannot connect to database down/);
    assert.equal(await count(b), 10);
    const st = await runCli(['status', '-f', file, '--format', 'json']);
    assert.equal(st.code, 1, 'a database could not be read');
    assert.match(st.stderr, /database down/);
    const s = JSON.parse(st.stdout).syncs;
    assert.equal(s.find((x: { name: string }) => x.name === 'to_b').state, 'idle');
    const failed = s.find((x: { name: string }) => x.name === 'to_down');
    assert.equal(failed.state, 'failed');
    assert.match(failed.last_run.error, /cannot connect to database down/);
  } finally {
    await env.cluster('down').start();
  }
});
