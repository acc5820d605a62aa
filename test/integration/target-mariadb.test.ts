/**
 * MariaDB/MySQL targets (SPEC section 7, docs/targets.md): a real PostgreSQL source, a real
 * MariaDB server (Debian's mariadbd, started by test/helpers/mariadb.ts for this file, as an
 * unprivileged user), the real CLI. Each test has its own MariaDB database.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useClusters, writeTopology, tempDir, waitFor, type TestDb } from '../helpers/env.js';
import { applyOk, runOnce } from '../helpers/install.js';
import { runCli, spawnCli } from '../helpers/cli.js';
import { useMariadb, MARIADB_PASSWORD, type MariadbDb } from '../helpers/mariadb.js';
import { TARGET_MATRIX_PG, refuseSourceCommit, compareDifferences } from '../helpers/targets.js';

const env = useClusters(['a']);
const maria = useMariadb();

type Row = Record<string, unknown>;

function topology(a: TestDb, m: MariadbDb, sync: Record<string, unknown> = {}, tables: unknown[] = ['public.items']): string {
  return writeTopology({
    version: 1,
    databases: { a: { url: a.url }, m: m.entry },
    relgroups: { g: { tables } },
    syncs: { s1: { relgroup: 'g', sources: ['a'], targets: ['m'], ...sync } },
  });
}

const ITEMS_PG = `CREATE TABLE public.items (id integer PRIMARY KEY, name text, qty bigint, price numeric(12,2));`;
const ITEMS_MARIA = `CREATE TABLE items (id INT PRIMARY KEY, name LONGTEXT, qty BIGINT, price DECIMAL(12,2)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;

/** Rows as the tests compare them: every value as text (bigint, DECIMAL and DATETIME exactly). */
async function items(m: MariadbDb): Promise<Row[]> {
  return (await m.rows('SELECT id, name, qty, price FROM items ORDER BY id')).map((r) => ({ ...r, qty: r.qty === null ? null : String(r.qty) }));
}
async function sourceItems(a: TestDb): Promise<Row[]> {
  return (await a.query(`SELECT id, name, qty::text, price::text FROM public.items ORDER BY id`)).rows;
}

test('plan fails naming a missing table, with the CREATE TABLE it takes; MyISAM is refused; apply installs the bookkeeping only', async () => {
  const [a] = await env.fresh('plan', ITEMS_PG);
  const m = await maria.fresh('plan', 'CREATE TABLE other (x INT)');
  const file = topology(a, m);
  const bad = await runCli(['plan', '-f', file]);
  assert.equal(bad.code, 1, bad.stdout + bad.stderr);
  assert.match(bad.stderr, /table "items" \(public\.items\) in mariadb database m does not exist/);
  assert.match(
    bad.stderr,
    /CREATE TABLE `items` \(\n {2}`id` INT NOT NULL,\n {2}`name` LONGTEXT,\n {2}`qty` BIGINT,\n {2}`price` DECIMAL\(12,2\),\n {2}PRIMARY KEY \(`id`\)\n\) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;/,
  );
  assert.doesNotMatch(bad.stdout + bad.stderr, new RegExp(MARIADB_PASSWORD));
  // the hint is valid MariaDB: run as printed, it makes plan pass
  const hint = /CREATE TABLE `items`[^;]*;/.exec(bad.stderr)![0];
  await m.exec('CREATE TABLE items (id INT PRIMARY KEY, name TEXT) ENGINE=InnoDB');
  const noCol = await runCli(['plan', '-f', file]);
  assert.equal(noCol.code, 1);
  assert.match(noCol.stderr, /table "items" \(public\.items\) in mariadb database m lacks column "qty", "price"/);
  await m.exec('DROP TABLE items; CREATE TABLE items (id INT, name TEXT, qty BIGINT, price DECIMAL(12,2), UNIQUE KEY (name(10))) ENGINE=InnoDB');
  const noKey = await runCli(['plan', '-f', file]);
  assert.equal(noKey.code, 1);
  assert.match(noKey.stderr, /lacks|has no primary key or unique index on exactly \(id\)/);
  await m.exec('ALTER TABLE items ADD UNIQUE KEY (id), ENGINE=MyISAM');
  const myisam = await runCli(['plan', '-f', file]);
  assert.equal(myisam.code, 1);
  assert.match(myisam.stderr, /uses the MyISAM engine, which cannot roll back a failed run: it must be InnoDB/);
  await m.exec(`DROP TABLE items; ${hint}`);
  const ok = await runCli(['plan', '-f', file, '--detailed-exitcode']);
  assert.equal(ok.code, 2, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /bucardo_sync_state/);
  await applyOk(file);
  assert.deepEqual(
    (await m.rows('SELECT table_name AS t, engine FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1')).map((r) => `${r.t}:${r.engine}`),
    ['bucardo_sync_state:InnoDB', 'items:InnoDB', 'other:InnoDB'],
  );
  const again = await runCli(['plan', '-f', file, '--detailed-exitcode']);
  assert.equal(again.code, 0, again.stdout + again.stderr);
});

test('onetimecopy, then inserts, updates, deletes, key changes and a TRUNCATE reach MariaDB; status shows it', async () => {
  const [a] = await env.fresh('delta', ITEMS_PG);
  await a.query(`INSERT INTO public.items SELECT i, 'item ' || i, i * 10, i * 1.5 FROM generate_series(1, 2500) i`);
  const m = await maria.fresh('delta', ITEMS_MARIA);
  const file = topology(a, m);
  await applyOk(file);
  await runOnce(file);
  assert.deepEqual(await items(m), await sourceItems(a), 'after the onetimecopy');
  await a.query(`INSERT INTO public.items VALUES (10000, 'new', NULL, 0.01)`);
  await a.query(`UPDATE public.items SET name = 'changed ☃ 😀 𝄞', price = 1234567890.99, qty = 9223372036854775807 WHERE id <= 5`);
  await a.query(`DELETE FROM public.items WHERE id BETWEEN 40 AND 1450`);
  await a.query(`UPDATE public.items SET id = id + 5000 WHERE id IN (10, 11, 2000)`);
  await a.query(`UPDATE public.items SET id = 11 WHERE id = 5011`); // a key that comes back
  await runOnce(file);
  assert.deepEqual(await items(m), await sourceItems(a), 'after the deltas');
  assert.deepEqual(await m.rows('SELECT sync, run_seq FROM bucardo_sync_state'), [{ sync: 's1', run_seq: '2' }]);
  await a.query(`TRUNCATE public.items`);
  await a.query(`INSERT INTO public.items VALUES (7, 'after truncate', 1, 1)`);
  await runOnce(file);
  assert.deepEqual(await items(m), await sourceItems(a), 'after the TRUNCATE');
  const st = await runCli(['status', '-f', file, '--format', 'json']);
  assert.equal(st.code, 0, st.stdout + st.stderr);
  const report = JSON.parse(st.stdout) as { syncs: { pending: number }[]; targets: Row[] };
  assert.equal(report.syncs[0].pending, 0);
  assert.deepEqual(
    report.targets.map((t) => [t.database, t.type, t.run_seq, t.rows]),
    [['m', 'mariadb', 3, 1]],
  );
  const text = await runCli(['status', '-f', file]);
  assert.match(text.stdout, /sync s1: mariadb database m at run 3, last written \S+ \S+ \(1 row\)/);
  assert.doesNotMatch(st.stdout + text.stdout + text.stderr, new RegExp(MARIADB_PASSWORD));
});

/** As plan's hint declares them, but for json and jsonb in MariaDB's JSON type (LONGTEXT with a validity check: the text is kept as written). */
const MATRIX_MARIA = `CREATE TABLE matrix (
  id BIGINT PRIMARY KEY, i2 SMALLINT, i4 INT, i8 BIGINT, bo BOOLEAN,
  n LONGTEXT, n2 DECIMAL(40,20), f8 DOUBLE, f4 DOUBLE, b LONGBLOB,
  ts DATETIME(6), ts3 DATETIME(6), tsl DATETIME(6), d LONGTEXT, tm LONGTEXT, iv LONGTEXT,
  arr LONGTEXT, tarr LONGTEXT, j JSON, jb JSON, u LONGTEXT, ip LONGTEXT, r4 LONGTEXT,
  m LONGTEXT, p INT, c LONGTEXT, x LONGTEXT, big LONGTEXT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin`;
/** Columns whose MariaDB value is PostgreSQL's own text output, unchanged (docs/targets.md). */
const AS_TEXT = ['n', 'd', 'tm', 'iv', 'arr', 'tarr', 'j', 'jb', 'u', 'ip', 'r4', 'm', 'c', 'x', 'big'];

test('types map value by value (docs/targets.md), and compare agrees', async () => {
  const [a] = await env.fresh('types', TARGET_MATRIX_PG);
  const m = await maria.fresh('types', MATRIX_MARIA);
  const file = topology(a, m, {}, ['public.matrix']);
  await applyOk(file);
  await a.query(`SET TimeZone = 'Pacific/Chatham'`);
  await a.query(`INSERT INTO public.matrix (id, i2, i4, i8, bo, n, n2, f8, f4, b, ts, ts3, tsl, d, tm, iv, arr, tarr, j, jb, u, ip, r4, m, p, c, x, big) VALUES
    (1, -32768, 2147483647, 9223372036854775807, true, 'NaN', 12345678901234567890.12345678901234567890, 1.7976931348623157e308, 1.4e-45, '\\x00010200ff00'::bytea,
     '2024-02-29 23:59:59.999999+13:45', '2024-01-01 00:00:00.5+00', '1999-12-31 23:59:59.5', '0044-03-15 BC', '12:34:56.789+05:30', '1 year 2 mons -3 days 04:05:06.789',
     '{{1,NULL},{3,4}}', '{"a b","",NULL,"\\"q\\"","{}"}', '{"k":  [1, 2.50, "x"], "k": 1}', '{"b": {"c": null}, "a": 1e3}',
     'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2001:db8::1/64', '[1,10)', 'happy', 7, ROW(3, 'x "y"'), '<doc a="1">t&amp;x</doc>', 'short'),
    (2, 0, -1, -9223372036854775808, false, -0.0000000000000000001, 0, '-0', -3.25, '', '1000-01-01 00:00:00+00', '9999-12-31 23:59:59.999+00', '2000-02-29 12:00:00', 'infinity', '00:00:00+00', '-178000000 years',
     '{}', '{}', 'null', '[]', '00000000-0000-0000-0000-000000000000', '0.0.0.0', 'empty', 'sad', 1, ROW(NULL, NULL), '<a/>',
     repeat('x', 100000) || E'\\u00e9\\u4e2d\\U0001F600'),
    (3, NULL, NULL, NULL, NULL, 1e-30, NULL, 5e-324, 3.4028235e38, decode(repeat('00ff', 60000), 'hex'), '1970-01-01 00:00:00+00', NULL, '2000-01-01 00:00:00.000001', NULL, NULL, NULL,
     '{{{1}},{{NULL}}}', '{NULL}', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, E'tab\\there\\nnewline \\\\ backslash \\x01 \\r ''quote'' \\x60')`);
  await runOnce(file);
  const rows = await m.rows('SELECT * FROM matrix ORDER BY id');
  // JSON columns read as their stored text, not parsed by the client
  const json = await m.rows('SELECT CAST(j AS CHAR) AS j, CAST(jb AS CHAR) AS jb FROM matrix ORDER BY id');
  for (const [i, r] of json.entries()) Object.assign(rows[i], r);
  const [r1, r2, r3] = rows;
  const exact: [Row, Row][] = [
    [
      r1,
      {
        id: '1',
        i2: -32768,
        i4: 2147483647,
        i8: '9223372036854775807',
        bo: 1,
        n2: '12345678901234567890.12345678901234567890',
        f8: 1.7976931348623157e308,
        f4: 1e-45,
      },
    ],
    [r1, { ts: '2024-02-29 10:14:59.999999', ts3: '2024-01-01 00:00:00.500000', tsl: '1999-12-31 23:59:59.500000', p: 7 }],
    [r2, { i8: '-9223372036854775808', bo: 0, n2: '0.00000000000000000000', f4: -3.25, ts: '1000-01-01 00:00:00.000000', ts3: '9999-12-31 23:59:59.999000' }],
    [
      r3,
      {
        i2: null,
        bo: null,
        n: '0.000000000000000000000000000001',
        f8: 5e-324,
        f4: 3.4028235e38,
        ts: '1970-01-01 00:00:00.000000',
        tsl: '2000-01-01 00:00:00.000001',
      },
    ],
  ];
  for (const [row, want] of exact) for (const [k, v] of Object.entries(want)) assert.deepEqual(row[k], v, `column ${k} of row ${row.id}`);
  assert.equal(r2.f8, 0, 'float8 -0 is stored as 0 (MariaDB keeps no negative zero)');
  assert.deepEqual(r1.b, Buffer.from('00010200ff00', 'hex'));
  assert.deepEqual(r2.b, Buffer.alloc(0));
  assert.equal((r3.b as Buffer).length, 120000);
  // every other column holds PostgreSQL's own text, read here under the runner's fixed settings
  const cols = AS_TEXT.map((c) => `CASE WHEN num_nulls(${c}) = 0 THEN concat(${c}) END AS ${c}`).join(', ');
  const pgRows = await a.query(
    `SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SELECT ${cols} FROM public.matrix ORDER BY id`,
  );
  const pgText = (pgRows as unknown as { rows: Row[] }[])[3].rows;
  for (const [i, row] of rows.entries()) for (const c of AS_TEXT) assert.equal(row[c], pgText[i][c], `column ${c} of row ${row.id}`);
  assert.equal(r1.j, '{"k":  [1, 2.50, "x"], "k": 1}', "MariaDB's JSON keeps the text as written");
  assert.equal(r1.jb, '{"a": 1000, "b": {"c": null}}');
  assert.equal((r2.big as string).slice(-5), 'xé中😀', 'unicode beyond the BMP too (utf8mb4)');
  assert.equal(r3.big, "tab\there\nnewline \\ backslash \x01 \r 'quote' `");
  const cmp = await runCli(['compare', '-f', file, 's1']);
  assert.equal(cmp.code, 0, cmp.stdout + cmp.stderr);
});

test('a value MariaDB cannot hold fails the run naming the row key and column, never stored as something else', async () => {
  const [a] = await env.fresh('nan', `CREATE TABLE public.odd (id integer PRIMARY KEY, f8 float8, n numeric(10,3), ts timestamptz, nt numeric, ft float8)`);
  const m = await maria.fresh(
    'nan',
    'CREATE TABLE odd (id INT PRIMARY KEY, f8 DOUBLE, n DECIMAL(10,2), ts DATETIME(6), nt LONGTEXT, ft LONGTEXT) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4',
  );
  const file = topology(a, m, {}, ['public.odd']);
  await applyOk(file);
  await a.query(
    `INSERT INTO public.odd VALUES (1, 1.5, 1.25, now(), 'NaN', 'Infinity'), (2, 'NaN', 2, now(), '-Infinity', '-Infinity'), (3, 3, 3, now(), 3, 3)`,
  );
  const nan = await runOnce(file, [], 1);
  assert.match(nan.stderr + nan.stdout, /table "odd" \(public\.odd\) in mariadb database m: row \(id\)=\(2\): Incorrect double value: 'NaN' for column .*`f8`/);
  await a.query(`UPDATE public.odd SET f8 = 2, ts = 'infinity' WHERE id = 2`);
  const inf = await runOnce(file, [], 1);
  assert.match(inf.stderr + inf.stdout, /row \(id\)=\(2\): Incorrect datetime value: 'infinity' for column .*`ts`/);
  await a.query(`UPDATE public.odd SET ts = now(), n = 2.005 WHERE id = 2`);
  const rounded = await runOnce(file, [], 1);
  assert.match(rounded.stderr + rounded.stdout, /row \(id\)=\(2\): Note 1265: Data truncated for column 'n'/, 'a DECIMAL rounding is refused, not kept');
  assert.equal(Number((await m.rows('SELECT count(*) AS n FROM odd'))[0].n), 0, 'every failed run rolled back');
  await a.query(`UPDATE public.odd SET n = 2.01 WHERE id = 2`);
  await runOnce(file);
  assert.deepEqual(
    (await m.rows('SELECT id, f8, n, nt, ft FROM odd ORDER BY id')).map((r) => Object.values(r).join('|')),
    ['1|1.5|1.25|NaN|Infinity', '2|2|2.01|-Infinity|-Infinity', '3|3|3.00|3|3'],
  );
  const cmp = await runCli(['compare', '-f', file, 's1']);
  assert.equal(cmp.code, 0, cmp.stdout + cmp.stderr);
});

test('a fullcopy sync replaces the rows of the MariaDB table each run', async () => {
  const [a] = await env.fresh('full', ITEMS_PG);
  await a.query(`INSERT INTO public.items SELECT i, 'item ' || i, i, i FROM generate_series(1, 3000) i`);
  const m = await maria.fresh('full', `${ITEMS_MARIA}; INSERT INTO items VALUES (99999, 'stale', 0, 0)`);
  const file = topology(a, m, { kind: 'fullcopy' });
  await applyOk(file);
  await runOnce(file);
  assert.deepEqual(await items(m), await sourceItems(a));
  await a.query(`DELETE FROM public.items WHERE id > 10; UPDATE public.items SET name = 'again'`);
  await runOnce(file);
  assert.deepEqual(await items(m), await sourceItems(a));
});

test('compare finds rows missing, extra and different in the MariaDB table', async () => {
  const [a] = await env.fresh('cmp', `CREATE TABLE public.items (id integer, k text, name text, price numeric(12,2), PRIMARY KEY (id, k))`);
  await a.query(`INSERT INTO public.items SELECT i, 'k' || i, 'item ' || i, i FROM generate_series(1, 30) i`);
  const m = await maria.fresh('cmp', 'CREATE TABLE items (id INT, k VARCHAR(255), name LONGTEXT, price DECIMAL(12,2), PRIMARY KEY (id, k)) ENGINE=InnoDB');
  const file = topology(a, m);
  await applyOk(file);
  await runOnce(file);
  const same = await runCli(['compare', '-f', file, 's1']);
  assert.equal(same.code, 0, same.stdout + same.stderr);
  await a.query(`DELETE FROM public.items WHERE id IN (5, 6)`);
  await runOnce(file);
  assert.equal(Number((await m.rows('SELECT count(*) AS n FROM items'))[0].n), 28, 'deletes by a two-column key');
  await m.exec(`UPDATE items SET price = 3.01 WHERE id = 3; DELETE FROM items WHERE id = 4; INSERT INTO items VALUES (77, 'k77', 'x', 1)`);
  const diff = await compareDifferences(file, 's1');
  assert.deepEqual(diff.rows, { a: 28, m: 28 });
  assert.deepEqual(diff.kinds, ['different:3:m', 'extra:77:m', 'missing:4:m']);
});

test('a PostgreSQL commit failing after MariaDB committed: the run is redone, nothing lost or doubled', async () => {
  const [a] = await env.fresh('crash', ITEMS_PG);
  await a.query(`INSERT INTO public.items SELECT i, 'item ' || i, i, i FROM generate_series(1, 2000) i`);
  const m = await maria.fresh('crash', ITEMS_MARIA);
  const file = topology(a, m);
  await applyOk(file);
  await runOnce(file);
  // the source's watermark write fails at COMMIT: after the MariaDB commit (foreign.ts)
  await refuseSourceCommit(a);
  await a.query(
    `UPDATE public.items SET qty = qty + 1000 WHERE id <= 1500; DELETE FROM public.items WHERE id > 1900; INSERT INTO public.items VALUES (5000, 'new', 1, 1)`,
  );
  const failed = await runOnce(file, [], 1);
  assert.match(failed.stderr + failed.stdout, /commit refused by the test/);
  assert.equal((await m.rows('SELECT run_seq FROM bucardo_sync_state'))[0].run_seq, '2', 'MariaDB committed the run');
  assert.equal((await a.one(`SELECT run_seq FROM bucardo_main.sync_state`)).run_seq, '1', 'the source did not');
  await a.query(
    `UPDATE public.items SET name = 'twice' WHERE id BETWEEN 1400 AND 1600; DELETE FROM public.items WHERE id = 5000; INSERT INTO public.items VALUES (6000, 'later', 2, 2)`,
  );
  await a.query(`DROP TRIGGER fail_commit ON bucardo_main.sync_state`);
  await runOnce(file);
  assert.deepEqual(await items(m), await sourceItems(a));
  assert.equal((await m.rows('SELECT run_seq FROM bucardo_sync_state'))[0].run_seq, '3');
});

test('the MariaDB server down fails only its sync, without printing the password; back up, the run catches up', async () => {
  const [a] = await env.fresh('down', ITEMS_PG);
  const [b] = await env.fresh('downpg', ITEMS_PG);
  const m = await maria.fresh('down', ITEMS_MARIA);
  const file = writeTopology(
    {
      version: 1,
      databases: { a: { url: a.url }, b: { url: b.url }, m: m.entry },
      relgroups: { g: { tables: ['public.items'] } },
      syncs: { to_m: { relgroup: 'g', sources: ['a'], targets: ['m'] }, to_pg: { relgroup: 'g', sources: ['a'], targets: ['b'] } },
    },
    tempDir(),
  );
  await applyOk(file);
  await runOnce(file);
  await a.query(`INSERT INTO public.items SELECT i, 'item ' || i, i, i FROM generate_series(1, 100) i`);
  await maria.server().stop();
  try {
    const r = await runOnce(file, [], 1);
    assert.match(r.stderr + r.stdout, /mariadb database m \(127\.0\.0\.1:\d+\/down_\d+\) is unavailable: .*ECONNREFUSED/);
    assert.doesNotMatch(r.stderr + r.stdout, new RegExp(MARIADB_PASSWORD));
    const st = await runCli(['status', '-f', file]);
    assert.doesNotMatch(st.stdout + st.stderr, new RegExp(MARIADB_PASSWORD));
  } finally {
    await maria.server().resume();
  }
  assert.equal((await b.one('SELECT count(*)::int AS n FROM public.items')).n, 100, 'the PostgreSQL sync ran');
  await a.query(`UPDATE public.items SET qty = -qty WHERE id <= 10`);
  await runOnce(file);
  assert.deepEqual(await items(m), await sourceItems(a));
});

test('the runner killed (SIGKILL) while it writes a large set into MariaDB: nothing committed there, the next run catches up', async () => {
  const [a] = await env.fresh('kill', ITEMS_PG);
  const m = await maria.fresh('kill', ITEMS_MARIA);
  const file = topology(a, m);
  await applyOk(file);
  await runOnce(file);
  await a.query(`INSERT INTO public.items SELECT i, repeat('x', 100) || i, i, i FROM generate_series(1, 150000) i`);
  const run = spawnCli(['run', '-f', file, '--once']);
  // rows the run has written but not committed, as a READ UNCOMMITTED reader sees them
  const uncommitted = () =>
    m.server.asRoot(async (c) => {
      await c.query('SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED');
      return Number(((await c.query('SELECT count(*) AS n FROM items'))[0] as Row[])[0].n);
    }, m.database);
  await waitFor(async () => (await uncommitted()) > 20_000, 'the run writing into MariaDB', 60_000, 20);
  run.kill('SIGKILL');
  await run.exited;
  // the server rolls back the transaction of a connection that went away
  await waitFor(async () => (await uncommitted()) === 0, 'the killed run rolled back', 30_000, 50);
  assert.equal(Number((await m.rows('SELECT count(*) AS n FROM items'))[0].n), 0, 'the killed run committed nothing');
  await a.query(`UPDATE public.items SET qty = -qty WHERE id % 1000 = 0; DELETE FROM public.items WHERE id > 149000`);
  await runOnce(file);
  assert.equal(Number((await m.rows('SELECT count(*) AS n FROM items'))[0].n), 149000);
  const cmp = await runCli(['compare', '-f', file, 's1']);
  assert.equal(cmp.code, 0, cmp.stdout + cmp.stderr);
});

test("a relgroup's sequence is brought up in MariaDB where it exists there (CREATE SEQUENCE), never down", async () => {
  const [a] = await env.fresh('seq', `CREATE SEQUENCE public.items_id_seq; ${ITEMS_PG}`);
  const m = await maria.fresh('seq', `${ITEMS_MARIA}; CREATE SEQUENCE items_id_seq`);
  const file = writeTopology({
    version: 1,
    databases: { a: { url: a.url }, m: m.entry },
    relgroups: { g: { tables: ['public.items'], sequences: ['public.items_id_seq'] } },
    syncs: { s1: { relgroup: 'g', sources: ['a'], targets: ['m'] } },
  });
  await applyOk(file);
  await a.query(`INSERT INTO public.items SELECT nextval('public.items_id_seq'), 'x', 1, 1 FROM generate_series(1, 42)`);
  await runOnce(file);
  const next = async () => Number((await m.rows('SELECT NEXTVAL(items_id_seq) AS n'))[0].n);
  assert.equal(await next(), 43, 'MariaDB hands out the value after the furthest the source handed out');
  await m.exec('SELECT SETVAL(items_id_seq, 1000)');
  await a.query(`INSERT INTO public.items SELECT nextval('public.items_id_seq'), 'y', 1, 1 FROM generate_series(1, 8)`);
  await runOnce(file);
  assert.equal(await next(), 1001, 'a sequence ahead on MariaDB is not moved back');
  assert.equal(Number((await m.rows('SELECT count(*) AS n FROM items'))[0].n), 50);
});
