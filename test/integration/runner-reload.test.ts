/**
 * Issue 10: an apply during a deploy reaches a runner that is already running, without a
 * restart and without a window in which a change is missed: syncs added, removed, enabled
 * or disabled, options such as the conflict strategy or checktime, tables and sequences,
 * a new onetimecopy. The runner logs what it picked up.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { useClusters, writeTopology, waitFor, type TestDb } from '../helpers/env.js';
import { applyOk } from '../helpers/install.js';
import { spawnCli } from '../helpers/cli.js';

const env = useClusters(['a', 'b', 'c']);

const DDL = `
CREATE TABLE public.items (id integer PRIMARY KEY, name text);
CREATE TABLE public.more (id integer PRIMARY KEY, v text);
CREATE SEQUENCE public.ids;
`;
const has = async (d: TestDb, table: string, id: number) => (await d.query(`SELECT 1 FROM ${table} WHERE id = $1`, [id])).rowCount === 1;
const nameOf = async (d: TestDb, id: number) => (await d.query(`SELECT name FROM public.items WHERE id = $1`, [id])).rows[0]?.name ?? null;

test('a running runner follows every apply: syncs added, changed, disabled and removed; tables, sequences and onetimecopies', {
  timeout: 240_000,
}, async () => {
  const [a, b, c] = await env.fresh('reload', DDL);
  const databases = { a: { url: a.url }, b: { url: b.url }, c: { url: c.url } };
  const v1 = {
    version: 1,
    databases,
    relgroups: { g: { tables: ['public.items'], sequences: ['public.ids'] } },
    syncs: { mm: { relgroup: 'g', sources: ['a', 'b'], conflict: 'latest' } },
  };
  const file = writeTopology(v1);
  await applyOk(file);
  const runner = spawnCli(['run', '-f', file, '--log-format', 'json']);
  const logged = (re: RegExp) => () =>
    runner
      .output()
      .stdout.split('\n')
      .some((l) => re.test(l));
  try {
    await a.query(`INSERT INTO public.items VALUES (1, 'one')`);
    await a.query(`SELECT setval('public.ids', 10)`);
    await waitFor(
      async () => (await has(b, 'public.items', 1)) && (await b.one(`SELECT last_value::int AS v FROM public.ids`)).v === 10,
      'the first sync working',
    );

    // a second sync, a table with rows already there (onetimecopy), the sequence out, priority to b
    await a.query(`INSERT INTO public.more SELECT i, 'old' FROM generate_series(1, 50) i`);
    writeTopology(
      {
        ...v1,
        relgroups: { g: { tables: ['public.items', 'public.more'] }, h: { tables: ['public.items'] } },
        syncs: {
          mm: { relgroup: 'g', sources: ['a', 'b'], conflict: { priority: ['b', 'a'] }, checktime: '30s' },
          to_c: { relgroup: 'h', sources: ['a'], targets: ['c'] },
        },
      },
      path.dirname(file),
      path.basename(file),
    );
    await applyOk(file);
    await waitFor(logged(/"event":"reload","level":"info","sync":"to_c","change":"added"/), 'the new sync picked up', 30_000);
    await waitFor(
      logged(/"event":"reload","level":"info","sync":"mm","change":"changed".*conflict.*priority.*checktimeMs.*sequences \[public\.ids\] -> \[\]/),
      'the changed sync picked up',
      30_000,
    );
    await waitFor(async () => (await b.one(`SELECT count(*)::int AS n FROM public.more`)).n === 50, 'the new table copied to b', 30_000);
    await waitFor(() => has(c, 'public.items', 1), 'the new sync copying items to c', 30_000);
    // the new strategy settles conflicts: b wins although a changed the row later
    await b.query(`UPDATE public.items SET name = 'b' WHERE id = 1`);
    await a.query(`UPDATE public.items SET name = 'a' WHERE id = 1`);
    await waitFor(async () => (await nameOf(a, 1)) === 'b' && (await nameOf(b, 1)) === 'b', 'priority to b', 30_000);
    // the sequence is no longer the sync's
    await a.query(`SELECT setval('public.ids', 500)`);
    await a.query(`INSERT INTO public.items VALUES (2, 'two')`);
    await waitFor(() => has(b, 'public.items', 2), 'a later change', 30_000);
    assert.equal((await b.one(`SELECT last_value::int AS v FROM public.ids`)).v, 10);

    // disabled, then removed
    writeTopology(
      {
        ...v1,
        relgroups: { g: { tables: ['public.items', 'public.more'] }, h: { tables: ['public.items'] } },
        syncs: {
          mm: { relgroup: 'g', sources: ['a', 'b'], conflict: { priority: ['b', 'a'] }, checktime: '30s' },
          to_c: { relgroup: 'h', sources: ['a'], targets: ['c'], enabled: false },
        },
      },
      path.dirname(file),
      path.basename(file),
    );
    await applyOk(file);
    await waitFor(logged(/"sync":"to_c","change":"disabled"/), 'the sync disabled', 30_000);
    await a.query(`INSERT INTO public.items VALUES (3, 'three')`);
    await waitFor(() => has(b, 'public.items', 3), 'the other sync still running', 30_000);
    assert.equal(await has(c, 'public.items', 3), false, 'a disabled sync runs no more');
    writeTopology(
      {
        ...v1,
        relgroups: { g: { tables: ['public.items', 'public.more'] } },
        syncs: { mm: { relgroup: 'g', sources: ['a', 'b'], conflict: { priority: ['b', 'a'] }, checktime: '30s' } },
      },
      path.dirname(file),
      path.basename(file),
    );
    await applyOk(file);
    await a.query(`INSERT INTO public.more VALUES (51, 'new')`);
    await waitFor(() => has(b, 'public.more', 51), 'the remaining sync running', 30_000);
    assert.doesNotMatch(runner.output().stdout, /"event":"run_failed"/);
  } finally {
    runner.kill('SIGTERM');
    const exit = await runner.exited;
    assert.equal(exit.code, 0, runner.output().stdout + runner.output().stderr);
  }
});
