/**
 * SQLite targets (SPEC section 7, docs/targets.md): a real PostgreSQL source, a real SQLite
 * file, the real CLI. SQLite needs no server, so these run in npm test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { useClusters, writeTopology, tempDir, type TestDb } from '../helpers/env.js';
import { applyOk, runOnce } from '../helpers/install.js';
import { runCli } from '../helpers/cli.js';
import { loadSqliteDriver } from '../../engine/targets/sqlite.js';

const env = useClusters(['a']);

type Row = Record<string, unknown>;

/** A SQLite file in a fresh folder, with `ddl` run in it; the topology beside it names it by a relative path. */
async function makeLite(ddl: string): Promise<{ dir: string; file: string; rows(sql: string, ...p: unknown[]): Row[]; exec(sql: string): void }> {
  const Database = await loadSqliteDriver();
  const dir = tempDir('bucardo-sqlite-');
  const file = path.join(dir, 'lite.db');
  const db = new Database(file, { fileMustExist: false });
  db.exec(ddl);
  db.close();
  const withDb = <T>(fn: (d: InstanceType<typeof Database>) => T): T => {
    const d = new Database(file, { fileMustExist: true });
    try {
      return fn(d);
    } finally {
      d.close();
    }
  };
  return {
    dir,
    file,
    rows: (sql, ...p) => withDb((d) => d.prepare(sql).all(...p) as Row[]),
    exec: (sql) => withDb((d) => d.exec(sql)),
  };
}

function topology(a: TestDb, dir: string, sync: Record<string, unknown> = {}, tables: unknown[] = ['public.items']): string {
  return writeTopology(
    {
      version: 1,
      databases: { a: { url: a.url }, lite: { type: 'sqlite', path: 'lite.db' } },
      relgroups: { g: { tables } },
      syncs: { s1: { relgroup: 'g', sources: ['a'], targets: ['lite'], ...sync } },
    },
    dir,
  );
}

const ITEMS_PG = `CREATE TABLE public.items (id integer PRIMARY KEY, name text, qty bigint, price numeric(12,2));`;
const ITEMS_LITE = `CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price TEXT);`;

/** The source's rows as SQLite should hold them. */
async function sourceItems(a: TestDb): Promise<Row[]> {
  const r = await a.query(`SELECT id, name, qty::text, price::text FROM public.items ORDER BY id`);
  return r.rows.map((x) => ({ id: x.id, name: x.name, qty: x.qty === null ? null : Number(x.qty), price: x.price }));
}

test('plan fails naming a missing table, with the CREATE TABLE it takes; apply installs the bookkeeping only', async () => {
  const [a] = await env.fresh('plan', ITEMS_PG);
  const lite = await makeLite('CREATE TABLE other (x INTEGER);');
  const file = topology(a, lite.dir);
  const bad = await runCli(['plan', '-f', file]);
  assert.equal(bad.code, 1, bad.stdout + bad.stderr);
  assert.match(bad.stderr, /table "items" \(public\.items\) in sqlite database lite does not exist/);
  assert.match(
    bad.stderr,
    /CREATE TABLE "items" \(\n {2}"id" INTEGER NOT NULL,\n {2}"name" TEXT,\n {2}"qty" INTEGER,\n {2}"price" TEXT,\n {2}PRIMARY KEY \("id"\)\n\);/,
  );
  lite.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);');
  const noCol = await runCli(['plan', '-f', file]);
  assert.equal(noCol.code, 1);
  assert.match(noCol.stderr, /table "items" \(public\.items\) in sqlite database lite lacks column "qty", "price"/);
  lite.exec(`DROP TABLE items; ${ITEMS_LITE}`);
  const ok = await runCli(['plan', '-f', file, '--detailed-exitcode']);
  assert.equal(ok.code, 2, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /bucardo_sync_state/);
  await applyOk(file);
  assert.deepEqual(
    lite.rows(`SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name`).map((r) => r.name),
    ['bucardo_sync_state', 'items', 'other'],
  );
  const again = await runCli(['plan', '-f', file, '--detailed-exitcode']);
  assert.equal(again.code, 0, again.stdout + again.stderr);
});

test('a sqlite database in sources is refused by validate, at that entry', async () => {
  const dir = tempDir();
  const file = writeTopology(
    `version: 1
databases:
  a: {url: "postgres://u@h/db"}
  lite: {type: sqlite, path: lite.db}
relgroups:
  g: {tables: [public.items]}
syncs:
  s1:
    relgroup: g
    sources: [a, lite]
    targets: []
`,
    dir,
  );
  const r = await runCli(['validate', '-f', file]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /bucardo\.yaml:10:18: sync "s1" names database "lite" \(type sqlite\) in sources: a sqlite database can only be a target/);
  const maria = writeTopology(`version: 1\ndatabases:\n  m: {type: mariadb, url: "mysql://h/db"}\n`, dir, 'm.yaml');
  const m = await runCli(['validate', '-f', maria]);
  assert.equal(m.code, 1);
  assert.match(m.stderr, /type mariadb is not supported yet/);
});

test('onetimecopy, then inserts, updates, deletes, key changes and a TRUNCATE reach the SQLite file', async () => {
  const [a] = await env.fresh('delta', ITEMS_PG);
  await a.query(`INSERT INTO public.items SELECT i, 'item ' || i, i * 10, i * 1.5 FROM generate_series(1, 50) i`);
  const lite = await makeLite(ITEMS_LITE);
  const file = topology(a, lite.dir);
  await applyOk(file);
  await runOnce(file);
  assert.deepEqual(lite.rows('SELECT * FROM items ORDER BY id'), await sourceItems(a), 'after the onetimecopy');
  await a.query(`INSERT INTO public.items VALUES (100, 'new', NULL, 0.01)`);
  await a.query(`UPDATE public.items SET name = 'changed ☃ 😀', price = 1234567890.99 WHERE id <= 5`);
  await a.query(`DELETE FROM public.items WHERE id BETWEEN 40 AND 45`);
  await a.query(`UPDATE public.items SET id = id + 1000 WHERE id IN (10, 11)`);
  await runOnce(file);
  assert.deepEqual(lite.rows('SELECT * FROM items ORDER BY id'), await sourceItems(a), 'after the deltas');
  const st = lite.rows('SELECT sync, run_seq FROM bucardo_sync_state');
  assert.deepEqual(st, [{ sync: 's1', run_seq: 2 }]);
  await a.query(`TRUNCATE public.items`);
  await a.query(`INSERT INTO public.items VALUES (7, 'after truncate', 1, 1)`);
  await runOnce(file);
  assert.deepEqual(lite.rows('SELECT * FROM items ORDER BY id'), await sourceItems(a), 'after the TRUNCATE');
  assert.equal(lite.rows('SELECT count(*) AS n FROM items')[0].n, 1);
});
