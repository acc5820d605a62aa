/**
 * SQLite targets (SPEC section 7, docs/targets.md): a real PostgreSQL source, a real SQLite
 * file, the real CLI. SQLite needs no server, so these run in npm test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { useClusters, writeTopology, tempDir, waitFor, type TestDb } from '../helpers/env.js';
import { applyOk, runOnce } from '../helpers/install.js';
import fs from 'node:fs';
import { runCli, spawnCli } from '../helpers/cli.js';
import { loadSqliteDriver } from '../../engine/targets/sqlite.js';
import { TARGET_MATRIX_PG, insertTargetMatrix, refuseSourceCommit, compareDifferences } from '../helpers/targets.js';

const env = useClusters(['a']);

type Row = Record<string, unknown>;

/** A SQLite file in a fresh folder, with `ddl` run in it; the topology beside it names it by a relative path. */
async function makeLite(
  ddl: string,
): Promise<{ dir: string; file: string; rows(sql: string, ...p: unknown[]): Row[]; bigRows(sql: string): Row[]; exec(sql: string): void }> {
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
    bigRows: (sql) => withDb((d) => d.prepare(sql).safeIntegers(true).all() as Row[]),
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
  // each engine takes only its own fields, and a server entry says where its tables are
  const wrong = writeTopology(
    `version: 1\ndatabases:\n  m: {type: mariadb, host: h, dbname: x}\n  r: {type: redis, url: "mysql://h/0"}\n  l: {type: sqlite, path: l.db, db: 2}\n`,
    dir,
    'm.yaml',
  );
  const m = await runCli(['validate', '-f', wrong]);
  assert.equal(m.code, 1);
  assert.match(m.stderr, /m\.yaml:3:\d+: database "m" is a mariadb database: dbname has no meaning there/);
  assert.match(m.stderr, /database "m" is a mariadb database without a database/);
  assert.match(m.stderr, /m\.yaml:4:\d+: database "r": url is not a valid redis:\/\/ or rediss:\/\/ URL/);
  assert.match(m.stderr, /m\.yaml:5:\d+: database "l" is a sqlite database: db has no meaning there/);
  const ok = writeTopology(
    `version: 1\ndatabases:\n  m: {type: mariadb, url: "mysql://u:secret@h:3307/shop"}\n  r: {type: redis, host: h, port: "6380", db: 3, password: secret}\n`,
    dir,
    'ok.yaml',
  );
  const v = await runCli(['validate', '-f', ok]);
  assert.equal(v.code, 0, v.stderr);
  assert.doesNotMatch(v.stdout + v.stderr, /secret/);
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
  const st3 = await runCli(['status', '-f', file, '--format', 'json']);
  assert.equal(st3.code, 0, st3.stdout + st3.stderr);
  const report = JSON.parse(st3.stdout) as { syncs: { pending: number }[]; targets: Row[] };
  assert.equal(report.syncs[0].pending, 0);
  assert.deepEqual(
    report.targets.map((t) => [t.database, t.type, t.run_seq, t.rows]),
    [['lite', 'sqlite', 3, 1]],
  );
  const text = await runCli(['status', '-f', file]);
  assert.match(text.stdout, /sync s1: sqlite database lite at run 3, last written \S+ \S+ \(1 row\)/);
});

const MATRIX_LITE = `CREATE TABLE matrix (
  id INTEGER PRIMARY KEY, i2 INTEGER, i4 INTEGER, i8 INTEGER, bo INTEGER,
  n TEXT, n2 TEXT, f8 REAL, f4 REAL, b BLOB,
  ts TEXT, ts3 TEXT, tsl TEXT, d TEXT, tm TEXT, iv TEXT,
  arr TEXT, tarr TEXT, j TEXT, jb TEXT, u TEXT, ip TEXT, r4 TEXT,
  m TEXT, p INTEGER, c TEXT, x TEXT, big TEXT
);`;
/** Columns whose SQLite value is PostgreSQL's own text output, unchanged (docs/targets.md). */
const AS_TEXT = ['d', 'tm', 'iv', 'arr', 'tarr', 'j', 'jb', 'u', 'ip', 'r4', 'm', 'c', 'x', 'big'];

test('types map value by value (docs/targets.md), and compare agrees', async () => {
  const [a] = await env.fresh('types', TARGET_MATRIX_PG);
  const lite = await makeLite(MATRIX_LITE);
  const file = topology(a, lite.dir, {}, ['public.matrix']);
  await applyOk(file);
  await insertTargetMatrix(a);
  await runOnce(file);
  const rows = lite.bigRows('SELECT * FROM matrix ORDER BY id');
  const [r1, r2, r3] = rows;
  const exact: [Row, Row][] = [
    [
      r1,
      {
        id: 1n,
        i2: -32768n,
        i4: 2147483647n,
        i8: 9223372036854775807n,
        bo: 1n,
        n: 'NaN',
        n2: '12345678901234567890.12345678901234567890',
        f8: 'Infinity',
        f4: '-Infinity',
      },
    ],
    [r1, { ts: '2024-02-29T10:14:59.999999Z', ts3: '2024-01-01T00:00:00.500000Z', tsl: '1999-12-31T23:59:59.500000', p: 7n }],
    [
      r2,
      {
        i8: -9223372036854775808n,
        bo: 0n,
        n: '-0.0000000000000000001',
        n2: '0.00000000000000000000',
        f4: 'NaN',
        ts: '-infinity',
        ts3: 'infinity',
        tsl: 'infinity',
      },
    ],
    [
      r3,
      {
        i2: null,
        bo: null,
        n: '0.000000000000000000000000000001',
        f8: 1.7976931348623157e308,
        f4: 1e-45,
        ts: '1970-01-01T00:00:00.000000Z',
        tsl: '2000-01-01T00:00:00.000001',
      },
    ],
  ];
  for (const [row, want] of exact) for (const [k, v] of Object.entries(want)) assert.deepEqual(row[k], v, `column ${k} of row ${row.id}`);
  assert.equal(Math.abs(r2.f8 as number), 0, 'float8 -0 is stored as 0 (SQLite keeps no negative zero)');
  assert.deepEqual(r1.b, Buffer.from('00010200ff00', 'hex'));
  assert.deepEqual(r2.b, Buffer.alloc(0));
  assert.equal((r3.b as Buffer).length, 120000);
  assert.equal(typeof r1.f8, 'string');
  // every other column holds PostgreSQL's own text, read here under the runner's fixed settings
  // concat() calls each type's output function, as COPY does (inet::text would add a /32)
  const cols = AS_TEXT.map((c) => `CASE WHEN num_nulls(${c}) = 0 THEN concat(${c}) END AS ${c}`).join(', ');
  const pgRows = await a.query(
    `SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SELECT ${cols} FROM public.matrix ORDER BY id`,
  );
  const pgText = (pgRows as unknown as { rows: Row[] }[])[3].rows;
  for (const [i, row] of rows.entries()) for (const c of AS_TEXT) assert.equal(row[c], pgText[i][c], `column ${c} of row ${row.id}`);
  assert.equal(r1.jb, '{"a": 1000, "b": {"c": null}}');
  assert.equal(r1.tarr, '{"a b","",NULL,"\\"q\\"","{}"}');
  assert.equal((r2.big as string).slice(-5), 'xé中😀', 'unicode beyond the BMP too');
  assert.equal(r3.big, 'tab\there\nnewline \\ backslash \x01 \r');
  const cmp = await runCli(['compare', '-f', file, 's1']);
  assert.equal(cmp.code, 0, cmp.stdout + cmp.stderr);
});

test('a fullcopy sync replaces the rows of the SQLite table each run', async () => {
  const [a] = await env.fresh('full', ITEMS_PG);
  await a.query(`INSERT INTO public.items SELECT i, 'item ' || i, i, i FROM generate_series(1, 20) i`);
  const lite = await makeLite(`${ITEMS_LITE} INSERT INTO items VALUES (999, 'stale', 0, '0');`);
  const file = topology(a, lite.dir, { kind: 'fullcopy' });
  await applyOk(file);
  await runOnce(file);
  assert.deepEqual(lite.rows('SELECT * FROM items ORDER BY id'), await sourceItems(a));
  await a.query(`DELETE FROM public.items WHERE id > 10; UPDATE public.items SET name = 'again'`);
  await runOnce(file);
  assert.deepEqual(lite.rows('SELECT * FROM items ORDER BY id'), await sourceItems(a));
});

test('compare finds rows missing, extra and different in the SQLite table', async () => {
  const [a] = await env.fresh('cmp', ITEMS_PG);
  await a.query(`INSERT INTO public.items SELECT i, 'item ' || i, i, i FROM generate_series(1, 30) i`);
  const lite = await makeLite(ITEMS_LITE);
  const file = topology(a, lite.dir);
  await applyOk(file);
  await runOnce(file);
  const same = await runCli(['compare', '-f', file, 's1']);
  assert.equal(same.code, 0, same.stdout + same.stderr);
  assert.match(same.stdout, /lite/);
  lite.exec(`UPDATE items SET price = '3.001' WHERE id = 3; DELETE FROM items WHERE id = 4; INSERT INTO items VALUES (77, 'x', 1, '1');`);
  const diff = await compareDifferences(file, 's1');
  assert.deepEqual(diff.rows, { a: 30, lite: 30 });
  assert.deepEqual(diff.kinds, ['different:3:lite', 'extra:77:lite', 'missing:4:lite']);
});

test('a PostgreSQL commit failing after SQLite committed: the run is redone, nothing lost or doubled', async () => {
  const [a] = await env.fresh('crash', ITEMS_PG);
  await a.query(`INSERT INTO public.items SELECT i, 'item ' || i, i, i FROM generate_series(1, 2000) i`);
  const lite = await makeLite(ITEMS_LITE);
  const file = topology(a, lite.dir);
  await applyOk(file);
  await runOnce(file);
  // the source's watermark write fails at COMMIT: after the SQLite commit (foreign.ts)
  await refuseSourceCommit(a);
  await a.query(
    `UPDATE public.items SET qty = qty + 1000 WHERE id <= 1500; DELETE FROM public.items WHERE id > 1900; INSERT INTO public.items VALUES (5000, 'new', 1, 1)`,
  );
  const failed = await runOnce(file, [], 1);
  assert.match(failed.stderr + failed.stdout, /commit refused by the test/);
  assert.equal(lite.rows('SELECT run_seq FROM bucardo_sync_state')[0].run_seq, 2, 'SQLite committed the run');
  assert.equal((await a.one(`SELECT run_seq FROM bucardo_main.sync_state`)).run_seq, '1', 'the source did not');
  // more changes, some to the same rows, before the redone run
  await a.query(
    `UPDATE public.items SET name = 'twice' WHERE id BETWEEN 1400 AND 1600; DELETE FROM public.items WHERE id = 5000; INSERT INTO public.items VALUES (6000, 'later', 2, 2)`,
  );
  await a.query(`DROP TRIGGER fail_commit ON bucardo_main.sync_state`);
  await runOnce(file);
  assert.deepEqual(lite.rows('SELECT * FROM items ORDER BY id'), await sourceItems(a));
  assert.equal(lite.rows('SELECT run_seq FROM bucardo_sync_state')[0].run_seq, 3);
  const cmp = await runCli(['compare', '-f', file, 's1']);
  assert.equal(cmp.code, 0, cmp.stdout + cmp.stderr);
});

test('a SQLite file locked by another writer fails only its sync; released, the run catches up', async () => {
  const [a] = await env.fresh('lock', ITEMS_PG);
  const [b] = await env.fresh('lockpg', ITEMS_PG);
  const lite = await makeLite(ITEMS_LITE);
  const file = writeTopology(
    {
      version: 1,
      databases: { a: { url: a.url }, b: { url: b.url }, lite: { type: 'sqlite', path: 'lite.db' } },
      relgroups: { g: { tables: ['public.items'] } },
      syncs: { to_lite: { relgroup: 'g', sources: ['a'], targets: ['lite'] }, to_pg: { relgroup: 'g', sources: ['a'], targets: ['b'] } },
    },
    lite.dir,
  );
  await applyOk(file);
  await runOnce(file);
  await a.query(`INSERT INTO public.items SELECT i, 'item ' || i, i, i FROM generate_series(1, 100) i`);
  const Database = await loadSqliteDriver();
  const holder = new Database(lite.file, { fileMustExist: true });
  holder.exec('BEGIN IMMEDIATE');
  try {
    const r = await runOnce(file, [], 1);
    assert.match(r.stderr + r.stdout, /sqlite database lite .*(SQLITE_BUSY|locked)/);
  } finally {
    holder.exec('ROLLBACK');
    holder.close();
  }
  assert.equal((await b.one('SELECT count(*)::int AS n FROM public.items')).n, 100, 'the PostgreSQL sync ran');
  assert.equal(lite.rows('SELECT count(*) AS n FROM items')[0].n, 0);
  await runOnce(file);
  assert.deepEqual(lite.rows('SELECT * FROM items ORDER BY id'), await sourceItems(a));
});

test('a SQLite target takes a table under another name, some columns and a filter; a table added later is copied', async () => {
  const [a] = await env.fresh('recv', `${ITEMS_PG} CREATE TABLE public.other (k text PRIMARY KEY, v text);`);
  await a.query(
    `INSERT INTO public.items SELECT i, 'item ' || i, i, i FROM generate_series(1, 20) i; INSERT INTO public.other VALUES ('x', 'one'), ('y', 'two')`,
  );
  const lite = await makeLite(
    `CREATE TABLE stock (id INTEGER PRIMARY KEY, qty INTEGER, note TEXT DEFAULT 'mine'); CREATE TABLE other (k TEXT PRIMARY KEY, v TEXT);`,
  );
  const items = { name: 'public.items', targets: { lite: { name: 'public.stock', columns: ['id', 'qty'], where: 'qty >= 10' } } };
  const file = topology(a, lite.dir, {}, [items]);
  await applyOk(file);
  await runOnce(file);
  const stock = () => lite.rows('SELECT id, qty, note FROM stock ORDER BY id');
  const want = (ids: number[], qty: (id: number) => number) => ids.map((id) => ({ id, qty: qty(id), note: 'mine' }));
  const range = (lo: number, hi: number) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
  assert.deepEqual(
    stock(),
    want(range(10, 20), (id) => id),
  );
  lite.exec(`UPDATE stock SET note = 'kept' WHERE id = 12`);
  await a.query(
    `UPDATE public.items SET qty = 5 WHERE id = 15; UPDATE public.items SET qty = 30 WHERE id = 3; UPDATE public.items SET qty = 99, name = 'n' WHERE id = 12`,
  );
  await runOnce(file);
  const rows = stock();
  assert.deepEqual(
    rows.map((r) => r.id),
    [3, 10, 11, 12, 13, 14, 16, 17, 18, 19, 20],
    'a row leaving the filter is deleted, one entering it inserted',
  );
  assert.deepEqual(rows[3], { id: 12, qty: 99, note: 'kept' }, "the receiver's own column keeps its value");
  // public.other joins the relgroup: its first run copies it into the SQLite file
  writeTopology(
    {
      version: 1,
      databases: { a: { url: a.url }, lite: { type: 'sqlite', path: 'lite.db' } },
      relgroups: { g: { tables: [items, 'public.other'] } },
      syncs: { s1: { relgroup: 'g', sources: ['a'], targets: ['lite'] } },
    },
    lite.dir,
  );
  await applyOk(file);
  await runOnce(file);
  assert.deepEqual(lite.rows('SELECT * FROM other ORDER BY k'), [
    { k: 'x', v: 'one' },
    { k: 'y', v: 'two' },
  ]);
  const cmp = await runCli(['compare', '-f', file, 's1']);
  assert.equal(cmp.code, 0, cmp.stdout + cmp.stderr);
});

test('the runner killed (SIGKILL) while it writes a large set into SQLite: nothing committed there, the next run catches up', async () => {
  const [a] = await env.fresh('kill', ITEMS_PG);
  const lite = await makeLite(ITEMS_LITE);
  const file = topology(a, lite.dir);
  await applyOk(file);
  await runOnce(file);
  await a.query(`INSERT INTO public.items SELECT i, repeat('x', 200) || i, i, i FROM generate_series(1, 300000) i`);
  const run = spawnCli(['run', '-f', file, '--once']);
  // SQLite spills an open transaction's pages into the WAL once its cache is full: the run is writing
  const wal = `${lite.file}-wal`;
  await waitFor(() => fs.existsSync(wal) && fs.statSync(wal).size > 4 << 20, 'the run writing into the WAL', 120_000, 20);
  run.kill('SIGKILL');
  await run.exited;
  assert.equal(lite.rows('SELECT count(*) AS n FROM items')[0].n, 0, 'the killed run committed nothing');
  await a.query(`UPDATE public.items SET qty = -qty WHERE id % 1000 = 0; DELETE FROM public.items WHERE id > 299000`);
  await runOnce(file);
  assert.equal(lite.rows('SELECT count(*) AS n FROM items')[0].n, 299000);
  const cmp = await runCli(['compare', '-f', file, 's1']);
  assert.equal(cmp.code, 0, cmp.stdout + cmp.stderr);
});
