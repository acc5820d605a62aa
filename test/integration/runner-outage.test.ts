import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useClusters, writeTopology, waitFor, type TestDb } from '../helpers/env.js';
import { applyOk, sameRows } from '../helpers/install.js';
import { spawnCli } from '../helpers/cli.js';

const env = useClusters(['a', 'b', 'down']);

const DDL = `CREATE TABLE public.items (id integer PRIMARY KEY, name text NOT NULL);`;
const count = async (d: TestDb) => (await d.query(`SELECT count(*)::int AS n FROM public.items`)).rows[0].n as number;

test('a stopped target stops only its sync, which catches up once the cluster is back', async () => {
  const [a, b, down] = await env.fresh('outage', DDL);
  const file = writeTopology({
    version: 1,
    databases: { a: { url: a.url }, b: { url: b.url }, down: { url: down.url } },
    relgroups: { g: { tables: ['public.items'] } },
    syncs: {
      to_b: { relgroup: 'g', sources: ['a'], targets: ['b'], checktime: '1s' },
      to_down: { relgroup: 'g', sources: ['a'], targets: ['down'], checktime: '1s' },
    },
  });
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
