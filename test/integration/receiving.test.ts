/**
 * Tables that a database takes its own way (SPEC section 6), on real clusters through the
 * CLI: a renamed table on a target, column subsets (on a target, and table-wide on a
 * two-source sync, where the guarded writes into a source update in place), transforms
 * (masking, a throw, a changed key, null), row filters (rows moving in and out, copies
 * and fullcopy taking matching rows, the direct and staged paths, compare), and the
 * shipped examples (examples/reporting, examples/regions).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { useClusters, simpleTopology, writeTopology, tempDir, type TestDb } from '../helpers/env.js';
import { applyOk, runOnce } from '../helpers/install.js';
import { runCli } from '../helpers/cli.js';
import { packageRoot } from '../../engine/paths.js';

const env = useClusters(['a', 'b', 'c']);

const ORDERS = `CREATE TABLE public.orders (id integer PRIMARY KEY, region text NOT NULL, total integer, email text);`;
const CUSTOMERS = `CREATE TABLE public.customers (id integer PRIMARY KEY, name text NOT NULL, email text, score integer);`;

/** Every row of a table as text, in key order. */
const rows = async (d: TestDb, table: string, where = 'true') =>
  (await d.query(`SELECT t::text AS r FROM ${table} t WHERE ${where} ORDER BY t::text COLLATE "C"`)).rows.map((x: { r: string }) => x.r);

/** Writes DIR/REL; returns DIR. */
function writeModule(dir: string, rel: string, source: string): string {
  fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
  fs.writeFileSync(path.join(dir, rel), source);
  return dir;
}

/** `bucardo compare s1`, its exit code and output. */
const compare = (file: string) => runCli(['compare', 's1', '-f', file, '--format', 'json']);

test('a renamed table on a target: onetimecopy, deltas and compare use its name there; plan names a missing one', async () => {
  const [a] = await env.fresh('rn', ORDERS, ['a']);
  const [b] = await env.fresh('rn', `CREATE SCHEMA reporting; ${ORDERS.replace('public.orders', 'reporting."Orders EU"')}`, ['b']);
  await a.query(`INSERT INTO public.orders SELECT i, CASE WHEN i % 2 = 0 THEN 'EU' ELSE 'US' END, i * 10, 'u' || i || '@x.org' FROM generate_series(1, 50) i`);
  const tables = [{ name: 'public.orders', targets: { b: { name: 'reporting."Orders EU"' } } }];
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables, sync: { onetimecopy: 'if_empty' } }));
  await applyOk(file);
  assert.equal((await runCli(['plan', '-f', file, '--detailed-exitcode'])).code, 0, 'no changes after apply');
  await runOnce(file);
  const there = 'reporting."Orders EU"';
  assert.deepEqual(await rows(b, there), await rows(a, 'public.orders'), 'copied into the renamed table');

  await a.query(`UPDATE public.orders SET total = -total WHERE id % 5 = 0`);
  await a.query(`UPDATE public.orders SET id = id + 1000 WHERE id = 7`);
  await a.query(`DELETE FROM public.orders WHERE id BETWEEN 20 AND 29`);
  await a.query(`INSERT INTO public.orders VALUES (100, 'EU', 1, NULL)`);
  await runOnce(file);
  assert.deepEqual(await rows(b, there), await rows(a, 'public.orders'), 'changes follow into the renamed table');

  const equal = await compare(file);
  assert.equal(equal.code, 0, equal.out);
  await b.query(`UPDATE ${there} SET total = 0 WHERE id = 100`);
  const differ = await compare(file);
  assert.equal(differ.code, 2, differ.out);
  assert.deepEqual(JSON.parse(differ.stdout).tables[0].differences, [{ key: { id: 100 }, kind: 'different', databases: ['b'] }]);

  const wrong = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: [{ name: 'public.orders', targets: { b: { name: 'reporting.nope' } } }] }));
  const plan = await runCli(['plan', '-f', wrong]);
  assert.equal(plan.code, 1, plan.out);
  assert.match(plan.out, /table reporting\.nope \(public\.orders renamed for b by name:\) of sync s1 does not exist on database b/);
});

test('a column subset on a target: the other columns keep their values on update and take their defaults on insert', async () => {
  const [a] = await env.fresh('cols', CUSTOMERS, ['a']);
  const [b] = await env.fresh('cols', `${CUSTOMERS.replace('score integer', "score integer DEFAULT 7, note text DEFAULT 'local'")}`, ['b']);
  const [c] = await env.fresh('cols', CUSTOMERS, ['c']);
  const tables = [{ name: 'public.customers', targets: { b: { columns: ['id', 'name'] } } }];
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b, c], tables, sync: { onetimecopy: 'never' } }));
  await applyOk(file);
  await a.query(`INSERT INTO public.customers VALUES (1, 'one', 'one@x.org', 10), (2, 'two', 'two@x.org', 20), (3, 'three', NULL, 30)`);
  await runOnce(file);
  assert.deepEqual(
    await rows(b, 'public.customers'),
    ['(1,one,,7,local)', '(2,two,,7,local)', '(3,three,,7,local)'],
    'inserted: the columns not sent take their defaults',
  );
  assert.deepEqual(await rows(c, 'public.customers'), await rows(a, 'public.customers'), 'c takes every column');

  await b.query(`UPDATE public.customers SET score = 99, note = 'kept', email = 'b@local' WHERE id IN (1, 2)`);
  await a.query(`UPDATE public.customers SET name = 'ONE' WHERE id = 1`);
  await a.query(`UPDATE public.customers SET email = 'new@x.org', score = 0 WHERE id = 2`);
  await a.query(`DELETE FROM public.customers WHERE id = 3`);
  await a.query(`INSERT INTO public.customers VALUES (4, 'four', 'four@x.org', 40)`);
  await runOnce(file);
  assert.deepEqual(
    await rows(b, 'public.customers'),
    ['(1,ONE,b@local,99,kept)', '(2,two,b@local,99,kept)', '(4,four,,7,local)'],
    'updated in place, deleted, inserted',
  );
  assert.deepEqual(await rows(c, 'public.customers'), await rows(a, 'public.customers'));
  const cmp = await compare(file);
  assert.equal(cmp.code, 0, `compare takes the columns sent only${cmp.out}`);
  assert.match(JSON.stringify(JSON.parse(cmp.stdout).tables[0].notes), /columns id, name/);
});

test('a column subset on a two-source sync: each source keeps its own values of the columns not sent', async () => {
  const [a, b] = await env.fresh('cols2', CUSTOMERS, ['a', 'b']);
  const file = writeTopology(
    simpleTopology({ sources: [a, b], tables: [{ name: 'public.customers', columns: ['id', 'name'] }], sync: { onetimecopy: 'never' } }),
  );
  await applyOk(file);
  await a.query(`INSERT INTO public.customers VALUES (1, 'one', 'a1@x.org', 1), (2, 'two', 'a2@x.org', 2)`);
  await b.query(`INSERT INTO public.customers VALUES (10, 'ten', 'b10@x.org', 10)`);
  await runOnce(file);
  assert.deepEqual(await rows(b, 'public.customers'), ['(1,one,,)', '(10,ten,b10@x.org,10)', '(2,two,,)']);
  assert.deepEqual(await rows(a, 'public.customers'), ['(1,one,a1@x.org,1)', '(10,ten,,)', '(2,two,a2@x.org,2)']);

  // b's own values, then a conflict on key 1 that a wins (latest): b takes a's name, keeps its email
  await b.query(`UPDATE public.customers SET email = 'b1@x.org', score = 5 WHERE id = 1`);
  await a.query(`UPDATE public.customers SET name = 'ONE' WHERE id = 1`);
  await b.query(`UPDATE public.customers SET name = 'TEN', score = 11 WHERE id = 10`);
  await a.query(`DELETE FROM public.customers WHERE id = 2`);
  await runOnce(file);
  assert.deepEqual(await rows(a, 'public.customers'), ['(1,ONE,a1@x.org,1)', '(10,TEN,,)']);
  assert.deepEqual(await rows(b, 'public.customers'), ['(1,ONE,b1@x.org,5)', '(10,TEN,b10@x.org,11)']);
  const cmp = await compare(file);
  assert.equal(cmp.code, 0, cmp.out);
});

const MASK = fs.readFileSync(path.join(packageRoot(), 'examples', 'transforms', 'mask-email.js'), 'utf8');

test('a transform masks e-mail addresses for one target: copy, inserts, updates, deletes; null leaves the row alone', async () => {
  const [a, b, c] = await env.fresh('mask', CUSTOMERS);
  await a.query(`INSERT INTO public.customers VALUES (1, 'one', 'jane.doe@example.com', 1), (2, 'two', NULL, 2), (3, E'tab\\there', 'x@y.org', 3)`);
  const dir = writeModule(
    tempDir(),
    'transforms/mask.js',
    MASK.replace(
      'export function transform(row, ctx) {',
      `export function transform(row, ctx) {
  if (ctx.database !== 'b' || ctx.sync !== 's1' || ctx.table !== 'public.customers') throw new Error('ctx ' + JSON.stringify(ctx));
  if (row.name === 'hidden') return null;`,
    ),
  );
  const tables = [{ name: 'public.customers', targets: { b: { transform: './transforms/mask.js' } } }];
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b, c], tables, sync: { onetimecopy: 'if_empty' } }), dir);
  await applyOk(file);
  await runOnce(file);
  assert.deepEqual(await rows(b, 'public.customers'), ['(1,one,j***@example.com,1)', '(2,two,,2)', '(3,"tab\there",x***@y.org,3)'], 'the copy is masked');
  assert.deepEqual(await rows(c, 'public.customers'), await rows(a, 'public.customers'), 'c takes the rows as they are');

  await a.query(`UPDATE public.customers SET email = 'new@example.com' WHERE id = 2`);
  await a.query(`DELETE FROM public.customers WHERE id = 3`);
  await a.query(`INSERT INTO public.customers SELECT i, 'n' || i, 'user' || i || '@example.com', i FROM generate_series(10, 6009) i`);
  await a.query(`UPDATE public.customers SET name = 'hidden', email = 'secret@example.com' WHERE id = 1`);
  await a.query(`INSERT INTO public.customers VALUES (7000, 'hidden', 'h@x.org', 0)`);
  await runOnce(file);
  assert.deepEqual(
    await rows(b, 'public.customers', 'id < 10 OR id >= 7000'),
    ['(1,one,j***@example.com,1)', '(2,two,n***@example.com,2)'],
    'null: row 1 left as it was, 7000 not sent',
  );
  assert.equal(
    (await b.one(`SELECT count(*)::int AS n FROM public.customers WHERE id BETWEEN 10 AND 6009 AND email = 'u***@example.com'`)).n,
    6000,
    'a large set goes through the transform too',
  );
  assert.deepEqual(await rows(c, 'public.customers'), await rows(a, 'public.customers'));
  const cmp = await compare(file);
  assert.equal(cmp.code, 2, `compared by key: 7000 is missing on b${cmp.out}`);
  const t = JSON.parse(cmp.stdout).tables[0];
  assert.deepEqual(t.differences, [{ key: { id: 7000 }, kind: 'missing', databases: ['b'] }]);
  assert.match(JSON.stringify(t.notes), /keys only \(transform \.\/transforms\/mask\.js\)/);
});

for (const [what, body, message] of [
  [
    'throws',
    `if (row.name === 'boom') throw new Error('no boom here'); return row;`,
    /transform \.\/t\.mjs threw Error: no boom here \(table public\.customers, key \{"id":"2"\}, database b, sync s1\); nothing was written/,
  ],
  [
    'changes the key',
    `return { ...row, id: String(Number(row.id) + 1) };`,
    /transform \.\/t\.mjs changed the key \(column id became "2"\) \(table public\.customers, key \{"id":"1"\}, database b, sync s1\)/,
  ],
  [
    'takes too long (async)',
    `return row.name === 'boom' ? new Promise(() => {}) : Promise.resolve(row);`,
    /transform \.\/t\.mjs took longer than 300 ms \(table public\.customers, key \{"id":"2"\}/,
  ],
] as const) {
  test(`a transform that ${what} fails the run, naming module, table and key; nothing changes anywhere`, async () => {
    const [a, b, c] = await env.fresh('trfail', CUSTOMERS);
    const dir = writeModule(tempDir(), 't.mjs', `export function transform(row) { ${body} }\n`);
    const tables = [{ name: 'public.customers', targets: { b: { transform: './t.mjs' } } }];
    const file = writeTopology(simpleTopology({ sources: [a], targets: [b, c], tables }), dir);
    await applyOk(file);
    await a.query(`INSERT INTO public.customers VALUES (1, 'one', NULL, 1), (2, 'boom', NULL, 2)`);
    const r = await runCli(['run', '-f', file, '--once'], { env: { BUCARDO_HOOK_TIMEOUT_MS: '300' } });
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, message);
    assert.deepEqual(await rows(b, 'public.customers'), []);
    assert.deepEqual(await rows(c, 'public.customers'), [], 'the run failed as a whole: c took nothing either');
    const st = await runCli(['status', 's1', '-f', file, '--format', 'json']);
    assert.match(JSON.parse(st.stdout).syncs[0].last_run.error, /transform \.\/t\.mjs/);
  });
}

test('a row filter on a target: rows move out (deleted) and in (inserted); copy, the direct path and compare take matching rows', async () => {
  const [a, b, c] = await env.fresh('where', ORDERS);
  await a.query(`INSERT INTO public.orders SELECT i, CASE WHEN i % 3 = 0 THEN 'EU' ELSE 'US' END, i, NULL FROM generate_series(1, 30) i`);
  // the filter names columns that bucardo's pending-key table has too (id), and the table by name
  const tables = [{ name: 'public.orders', targets: { b: { where: "region = 'EU' AND orders.id > 0 AND id <> 3000" } } }];
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b, c], tables, sync: { onetimecopy: 'if_empty' } }));
  await applyOk(file);
  await runOnce(file);
  const eu = "region = 'EU' AND id <> 3000";
  assert.deepEqual(await rows(b, 'public.orders'), await rows(a, 'public.orders', eu), 'the copy takes the matching rows');
  assert.deepEqual(await rows(c, 'public.orders'), await rows(a, 'public.orders'));

  await a.query(`UPDATE public.orders SET region = 'US' WHERE id = 3`); // out
  await a.query(`UPDATE public.orders SET region = 'EU' WHERE id = 4`); // in
  await a.query(`UPDATE public.orders SET total = -1 WHERE id IN (6, 7)`);
  await a.query(`DELETE FROM public.orders WHERE id IN (9, 10)`);
  await runOnce(file);
  assert.deepEqual(await rows(b, 'public.orders'), await rows(a, 'public.orders', eu), 'by key: moved out, moved in, updated, deleted');
  assert.equal((await compare(file)).code, 0);

  // above 5,000 keys from one source to targets only: the direct path, filtered
  await a.query(`INSERT INTO public.orders SELECT i, CASE WHEN i % 2 = 0 THEN 'EU' ELSE 'US' END, i, NULL FROM generate_series(1000, 7999) i`);
  await a.query(`UPDATE public.orders SET region = 'US' WHERE id = 12`);
  await runOnce(file);
  assert.deepEqual(await rows(b, 'public.orders'), await rows(a, 'public.orders', eu), 'direct apply takes the matching rows');
  assert.deepEqual(await rows(c, 'public.orders'), await rows(a, 'public.orders'));
  const cmp = await compare(file);
  assert.equal(cmp.code, 0, cmp.out);
  const n = (await a.one(`SELECT count(*)::int AS n FROM public.orders WHERE ${eu}`)).n;
  assert.deepEqual(JSON.parse(cmp.stdout).tables[0].rows, { a: n, b: n, c: 7028 });
  await b.query(`INSERT INTO public.orders VALUES (5, 'US', 5, NULL)`);
  const extra = await compare(file);
  assert.deepEqual(
    JSON.parse(extra.stdout).tables[0].differences,
    [{ key: { id: 5 }, kind: 'extra', databases: ['b'] }],
    'a row on b that does not match is a difference',
  );
});

test('fullcopy with a row filter and a renamed table copies only the matching rows', async () => {
  const [a, c] = await env.fresh('fcw', ORDERS, ['a', 'c']);
  const [b] = await env.fresh('fcw', `CREATE SCHEMA r; ${ORDERS.replace('public.orders', 'r.orders')}`, ['b']);
  await a.query(`INSERT INTO public.orders SELECT i, CASE WHEN i % 4 = 0 THEN 'EU' ELSE 'US' END, i, NULL FROM generate_series(1, 400) i`);
  await b.query(`INSERT INTO r.orders VALUES (-1, 'EU', 0, 'stale')`);
  const tables = [{ name: 'public.orders', targets: { b: { name: 'r.orders', where: "region = 'EU'" } } }];
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b, c], tables, sync: { kind: 'fullcopy' } }));
  await applyOk(file);
  await runOnce(file);
  assert.deepEqual(await rows(b, 'r.orders'), await rows(a, 'public.orders', "region = 'EU'"));
  assert.deepEqual(await rows(c, 'public.orders'), await rows(a, 'public.orders'));
  await a.query(`UPDATE public.orders SET region = 'EU' WHERE id = 1`);
  await runOnce(file);
  assert.deepEqual(await rows(b, 'r.orders'), await rows(a, 'public.orders', "region = 'EU'"));
  assert.equal((await compare(file)).code, 0);
});

test('a table-wide row filter on a two-source sync: rows that do not match stay where they were written', async () => {
  const [a, b] = await env.fresh('where2', ORDERS, ['a', 'b']);
  const file = writeTopology(
    simpleTopology({ sources: [a, b], tables: [{ name: 'public.orders', where: "region <> 'test'" }], sync: { onetimecopy: 'never' } }),
  );
  await applyOk(file);
  await a.query(`INSERT INTO public.orders VALUES (1, 'EU', 1, NULL), (2, 'test', 2, NULL), (3, 'US', 3, NULL)`);
  await b.query(`INSERT INTO public.orders VALUES (10, 'EU', 10, NULL), (11, 'test', 11, NULL)`);
  await runOnce(file);
  assert.deepEqual(await rows(a, 'public.orders'), ['(1,EU,1,)', '(10,EU,10,)', '(2,test,2,)', '(3,US,3,)']);
  assert.deepEqual(await rows(b, 'public.orders'), ['(1,EU,1,)', '(10,EU,10,)', '(11,test,11,)', '(3,US,3,)']);

  await a.query(`UPDATE public.orders SET region = 'test' WHERE id = 1`); // out: deleted on b
  await a.query(`UPDATE public.orders SET region = 'EU' WHERE id = 2`); // in: inserted on b
  await b.query(`UPDATE public.orders SET total = 100 WHERE id = 10`);
  // above 10,000 keys into a source: the staged join form, filtered
  await a.query(`INSERT INTO public.orders SELECT i, CASE WHEN i % 2 = 0 THEN 'EU' ELSE 'test' END, i, NULL FROM generate_series(1000, 12999) i`);
  await runOnce(file);
  assert.deepEqual(await rows(b, 'public.orders', 'id < 1000'), ['(10,EU,100,)', '(11,test,11,)', '(2,EU,2,)', '(3,US,3,)']);
  assert.deepEqual(await rows(a, 'public.orders', 'id < 1000'), ['(1,test,1,)', '(10,EU,100,)', '(2,EU,2,)', '(3,US,3,)']);
  assert.equal((await b.one(`SELECT count(*)::int AS n FROM public.orders WHERE id >= 1000`)).n, 6000);
  const cmp = await compare(file);
  assert.equal(cmp.code, 0, `compare reads both sources through the filter${cmp.out}`);
});

test('examples/reporting and examples/regions: the masked reporting copy and the orders by region', async () => {
  const examples = path.join(packageRoot(), 'examples');
  const [app] = await env.fresh(
    'ex_app',
    `CREATE TABLE public.customers (id bigint PRIMARY KEY, name text NOT NULL, email text, country text, password_hash text);`,
    ['a'],
  );
  const [rep] = await env.fresh(
    'ex_rep',
    `CREATE SCHEMA reporting; CREATE TABLE reporting.customers (id bigint PRIMARY KEY, name text NOT NULL, email text, country text, segment text DEFAULT 'unassigned');`,
    ['b'],
  );
  await app.query(`INSERT INTO public.customers VALUES (1, 'Jane', 'jane.doe@example.com', 'NL', 'x'), (2, 'Joe', 'joe@example.org', 'US', 'y')`);
  const masked = path.join(examples, 'reporting', 'masked-customers.yaml');
  const repEnv = { APP_URL: app.url, REPORTING_URL: rep.url };
  for (const args of [
    ['apply', '-f', masked, '--auto-approve'],
    ['run', '-f', masked, '--once'],
  ]) {
    const r = await runCli(args, { env: repEnv });
    assert.equal(r.code, 0, r.out);
  }
  await rep.query(`UPDATE reporting.customers SET segment = 'gold' WHERE id = 1`);
  await app.query(`UPDATE public.customers SET email = 'jane@example.net', password_hash = 'z' WHERE id = 1`);
  assert.equal((await runCli(['run', '-f', masked, '--once'], { env: repEnv })).code, 0);
  assert.deepEqual(await rows(rep, 'reporting.customers'), ['(1,Jane,j***@example.net,NL,gold)', '(2,Joe,j***@example.org,US,unassigned)']);

  const DDL = `CREATE TABLE public.orders (id bigint PRIMARY KEY, region text NOT NULL, customer_id bigint, total numeric(12,2), created_at timestamptz DEFAULT now());`;
  const [hq, eu, us] = await env.fresh('ex_reg', DDL);
  await hq.query(`INSERT INTO public.orders (id, region, total) VALUES (1, 'EU', 1), (2, 'US', 2), (3, 'APAC', 3)`);
  const regions = path.join(examples, 'regions', 'orders-by-region.yaml');
  const regEnv = { HQ_URL: hq.url, EU_URL: eu.url, US_URL: us.url };
  for (const args of [
    ['apply', '-f', regions, '--auto-approve'],
    ['run', '-f', regions, '--once'],
  ]) {
    const r = await runCli(args, { env: regEnv });
    assert.equal(r.code, 0, r.out);
  }
  await hq.query(`UPDATE public.orders SET region = 'US' WHERE id = 1`);
  assert.equal((await runCli(['run', '-f', regions, '--once'], { env: regEnv })).code, 0);
  const ids = async (d: TestDb) => (await d.query('SELECT id::int FROM public.orders ORDER BY id')).rows.map((r: { id: number }) => r.id);
  assert.deepEqual(await ids(eu), []);
  assert.deepEqual(await ids(us), [1, 2]);
  const cmp = await runCli(['compare', 'orders', '-f', regions], { env: regEnv });
  assert.equal(cmp.code, 0, cmp.out);
});
