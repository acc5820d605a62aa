import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useClusters, simpleTopology, writeTopology } from '../helpers/env.js';
import { applyOk, runOnce, assertSame } from '../helpers/install.js';
import { runCli } from '../helpers/cli.js';

const env = useClusters(['a', 'b']);

test('strict: false replicates the columns common to every database', async () => {
  const [a, b] = await env.fresh('nonstrict', 'CREATE TABLE public.items (id integer PRIMARY KEY, name text)');
  await a.query(`ALTER TABLE public.items ADD COLUMN only_a text DEFAULT 'a'`);
  await b.query(`ALTER TABLE public.items ADD COLUMN only_b text DEFAULT 'b'`);
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ['public.items'], sync: { strict: false } }));
  const ap = await runCli(['apply', '-f', file, '--auto-approve']);
  assert.equal(ap.code, 0, ap.out);
  await a.query(`INSERT INTO public.items (id, name) VALUES (1, 'one'), (2, 'two')`);
  await runOnce(file);
  const rows = (await b.query(`SELECT id, name, only_b FROM public.items ORDER BY id`)).rows;
  assert.deepEqual(rows, [
    { id: 1, name: 'one', only_b: 'b' },
    { id: 2, name: 'two', only_b: 'b' },
  ]);
});

test('isolation: serializable, JSON log lines, and --sync selecting one sync', async () => {
  const [a, b] = await env.fresh('serial', 'CREATE TABLE public.items (id integer PRIMARY KEY, name text)');
  const file = writeTopology({
    version: 1,
    databases: { a: { url: a.url }, b: { url: b.url } },
    relgroups: { g: { tables: ['public.items'] } },
    syncs: {
      s1: { relgroup: 'g', sources: ['a'], targets: ['b'], isolation: 'serializable' },
      other: { relgroup: 'g', sources: ['a'], targets: ['b'], enabled: false },
    },
  });
  await applyOk(file);
  await a.query(`INSERT INTO public.items SELECT i, 'x' FROM generate_series(1, 30) i`);
  const r = await runOnce(file, ['--sync', 's1', '--log-format', 'json']);
  const lines = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const run = lines.find((l) => l.event === 'run');
  assert.equal(run.rows, 30);
  assert.equal(typeof run.duration_ms, 'number');
  await assertSame([a, b], ['public.items']);
  const bad = await runCli(['run', '-f', file, '--once', '--sync', 'nope']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /sync nope is not in/);
});
