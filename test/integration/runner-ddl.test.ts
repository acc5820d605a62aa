/**
 * A running runner and ALTER TABLE between its runs. A daemon keeps each database's table
 * details (columns, key indexes, foreign keys) from one run to the next and reads them
 * again only when the catalog says they changed (engine/runner/sql/prepare.ts): every
 * kind of change a run depends on must still reach the next run that touches the table,
 * whether the table was changed while it had changes pending or while it was idle.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import pg from 'pg';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { useClusters, simpleTopology, writeTopology, waitFor, tempDir, type TestDb } from '../helpers/env.js';
import { applyOk, runOnce } from '../helpers/install.js';
import { spawnCli } from '../helpers/cli.js';

const env = useClusters(['a', 'b']);

const DDL = `
CREATE TABLE public.items (id integer PRIMARY KEY, name text NOT NULL);
CREATE TABLE public.other (id integer PRIMARY KEY, v text);
`;

const rowOn = async (d: TestDb, sql: string, params: unknown[]) => (await d.query(sql, params)).rows[0] ?? null;

test('a running runner picks up added, retyped and dropped columns, on busy and on idle tables', async () => {
  const [a, b] = await env.fresh('ddl', DDL);
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ['public.items', 'public.other'] }));
  await applyOk(file);
  const runner = spawnCli(['run', '-f', file, '--log-format', 'json']);
  // a column is added on the target first and dropped on the source first: with strict
  // (the default) a column only the source has fails the run
  const both = async (sql: string, first = b, then = a) => {
    await first.query(sql);
    await then.query(sql);
  };
  try {
    await a.query(`INSERT INTO public.items VALUES (1, 'one'); INSERT INTO public.other VALUES (1, 'x')`);
    await waitFor(async () => (await rowOn(b, 'SELECT v FROM public.other WHERE id = $1', [1]))?.v === 'x', 'the first rows on b');

    // a column added to a table the next change touches
    await both(`ALTER TABLE public.items ADD COLUMN note text`);
    await a.query(`INSERT INTO public.items VALUES (2, 'two', 'n2')`);
    await waitFor(async () => (await rowOn(b, 'SELECT note FROM public.items WHERE id = $1', [2]))?.note === 'n2', 'the added column of items on b');

    // a column added to a table while runs moved only other tables' rows
    await both(`ALTER TABLE public.other ADD COLUMN x integer`);
    await a.query(`INSERT INTO public.items VALUES (3, 'three', 'n3')`);
    await waitFor(async () => (await rowOn(b, 'SELECT note FROM public.items WHERE id = $1', [3]))?.note === 'n3', 'a run of items only');
    await a.query(`INSERT INTO public.other VALUES (2, 'y', 42)`);
    await waitFor(async () => (await rowOn(b, 'SELECT x FROM public.other WHERE id = $1', [2]))?.x === 42, 'the added column of the idle table on b');

    // a column retyped, then dropped
    await both(`ALTER TABLE public.other ALTER COLUMN x TYPE numeric(10,2)`);
    await a.query(`UPDATE public.other SET x = 1.25 WHERE id = 2`);
    await waitFor(async () => (await rowOn(b, 'SELECT x::text FROM public.other WHERE id = $1', [2]))?.x === '1.25', 'the retyped column on b');
    await both(`ALTER TABLE public.items DROP COLUMN note`, a, b);
    await a.query(`INSERT INTO public.items VALUES (4, 'four')`);
    await waitFor(async () => (await rowOn(b, 'SELECT name FROM public.items WHERE id = $1', [4]))?.name === 'four', 'a row after the drop on b');

    const failed = runner
      .output()
      .stdout.split('\n')
      .filter((l) => l.includes('"event":"run_failed"'));
    assert.deepEqual(failed, [], 'no run failed');
  } finally {
    runner.kill('SIGTERM');
    await runner.exited;
  }
});

test('a column added, and filled, between a run reading the tables and taking its snapshot reaches the target', async () => {
  const [a, b] = await env.fresh('ddlrace', DDL);
  const dir = tempDir();
  const marker = path.join(dir, 'alter-now');
  // before_sync runs after the run read every database's tables and before its snapshot:
  // the one moment an application's ALTER TABLE ... ADD COLUMN and an INSERT filling the
  // column can commit unseen by the first and seen by the second (once: the marker file)
  const pgUrl = pathToFileURL(createRequire(import.meta.url).resolve('pg')).href;
  fs.writeFileSync(
    path.join(dir, 'alter.js'),
    `import pg from ${JSON.stringify(pgUrl)};
import fs from 'node:fs';
export async function before_sync() {
  if (!fs.existsSync(${JSON.stringify(marker)})) return;
  fs.rmSync(${JSON.stringify(marker)});
  for (const [url, sql] of [[${JSON.stringify(b.url)}, 'ALTER TABLE public.items ADD COLUMN note text'],
                            [${JSON.stringify(a.url)}, "ALTER TABLE public.items ADD COLUMN note text; INSERT INTO public.items VALUES (2, 'two', 'n2')"]]) {
    const c = new pg.Client(url);
    await c.connect();
    await c.query(sql);
    await c.end();
  }
}
`,
  );
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ['public.items'], sync: { hooks: { before_sync: './alter.js' } } }), dir);
  await applyOk(file);
  await a.query(`INSERT INTO public.items VALUES (1, 'one')`);
  await runOnce(file);
  fs.writeFileSync(marker, '');
  await runOnce(file);
  assert.equal(fs.existsSync(marker), false, 'the hook altered the tables');
  assert.deepEqual((await b.query('SELECT id, name, note FROM public.items ORDER BY id')).rows, [
    { id: 1, name: 'one', note: null },
    { id: 2, name: 'two', note: 'n2' },
  ]);
});

test('a table rewritten by ALTER TABLE after a run took its snapshot does not look empty to the run', async () => {
  // PostgreSQL's table rewrites are not MVCC-safe: to a snapshot taken before the rewrite
  // committed, the rewritten table looks empty, and a run reading its changed rows then
  // would take them for deleted and delete them on the target
  const [a, b] = await env.fresh('rewrite', `CREATE TABLE public.items (id integer PRIMARY KEY, n integer NOT NULL);`);
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ['public.items'] }));
  await applyOk(file);
  await a.query(`INSERT INTO public.items SELECT i, i FROM generate_series(1, 3) i`);
  await runOnce(file);
  await b.query(`ALTER TABLE public.items ALTER COLUMN n TYPE bigint`);
  await a.query(`UPDATE public.items SET n = 20 WHERE id = 2`);
  const app = new pg.Client(a.cluster.clientConfig(a.dbname));
  await app.connect();
  try {
    // the application holds the table, so the run takes its snapshot and then waits to read it
    await app.query('BEGIN; LOCK TABLE public.items IN ACCESS EXCLUSIVE MODE');
    const run = spawnCli(['run', '-f', file, '--once']);
    await waitFor(
      async () =>
        (
          await a.one(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND application_name LIKE 'bucardo:s1:read:%'`,
          )
        ).n === 1,
      'the run reading public.items, waiting for the lock',
    );
    await app.query('ALTER TABLE public.items ALTER COLUMN n TYPE bigint; COMMIT');
    const exit = await run.exited;
    assert.equal(exit.code, 0, run.output().stdout + run.output().stderr);
  } finally {
    await app.end();
  }
  assert.deepEqual((await b.query('SELECT id, n::int FROM public.items ORDER BY id')).rows, [
    { id: 1, n: 1 },
    { id: 2, n: 20 },
    { id: 3, n: 3 },
  ]);
});
