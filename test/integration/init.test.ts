/**
 * `bucardo init --from URL` on a database with keyed and keyless tables: the starter
 * topology lists the keyed ones (odd names quoted), their sequences, explains the keyless
 * ones, never holds the password, validates as written, and plans cleanly once the
 * target points at a real database.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { useClusters, tempDir } from '../helpers/env.js';
import { runCli } from '../helpers/cli.js';
import { SUPERPASS } from '../../cli/demo/clusters.js';

const env = useClusters(['a', 'b']);

const DDL = `
  CREATE TABLE customers (id serial PRIMARY KEY, name text);
  CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer_id int, total numeric);
  CREATE TABLE codes (code text NOT NULL, label text);
  CREATE UNIQUE INDEX codes_code ON codes (code);
  CREATE TABLE logs (at timestamptz, line text);
  CREATE TABLE emails (addr text, kind text);
  CREATE UNIQUE INDEX emails_addr ON emails (addr);
  CREATE TABLE partial (id int NOT NULL, live bool);
  CREATE UNIQUE INDEX partial_live ON partial (id) WHERE live;
  CREATE SCHEMA "Sales EU";
  CREATE TABLE "Sales EU"."Order ""Lines"" ✓" (id int PRIMARY KEY);
  CREATE TABLE "Sales EU".notes (body text);
  CREATE SEQUENCE invoice_no;
  CREATE SCHEMA archive;
  CREATE TABLE archive.old_orders (id int PRIMARY KEY);
  CREATE TABLE archive.payments (id int, paid date, PRIMARY KEY (id, paid)) PARTITION BY RANGE (paid);
  CREATE TABLE archive.payments_2024 PARTITION OF archive.payments FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
  CREATE TABLE archive.payments_2025 PARTITION OF archive.payments FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
  CREATE VIEW public.big_orders AS SELECT * FROM orders WHERE total > 100;
  CREATE MATERIALIZED VIEW public.order_totals AS SELECT customer_id, sum(total) FROM orders GROUP BY 1;
`;

test('keyed tables in the relgroup, keyless ones explained, no password, valid as written', async () => {
  const [a, b] = await env.fresh('init_main', DDL);
  const dir = tempDir();
  const out = path.join(dir, 'bucardo.yaml');
  const r = await runCli(['init', '--from', a.url, '-o', out]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.stderr, /Wrote .*bucardo\.yaml: 6 tables, 3 sequences; 4 tables without a usable key/);
  const text = fs.readFileSync(out, 'utf8');
  assert.match(text.split('\n')[0]!, /^# yaml-language-server: \$schema=\S*schemas\/topology\.schema\.json$/);
  assert.ok(!text.includes(SUPERPASS), 'the password is not in the file');
  assert.doesNotMatch(r.out, new RegExp(SUPERPASS));
  for (const t of ['public.customers', 'public.orders', 'public.codes', 'archive.old_orders', `'"Sales EU"."Order ""Lines"" ✓"'`]) {
    assert.match(text, new RegExp(`^ {6}- ${t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'), t);
  }
  for (const s of ['public.customers_id_seq', 'public.orders_id_seq', 'public.invoice_no'])
    assert.match(text, new RegExp(`^ {6}- ${s.replace('.', '\\.')}$`, 'm'));
  assert.match(text, /^# {3}public\.logs: no primary key and no unique index$/m);
  assert.match(text, /^# {3}public\.emails: no primary key; unique index emails_addr is on nullable column addr$/m);
  assert.match(text, /^# {3}public\.partial: no primary key; unique index partial_live is partial$/m);
  assert.match(text, /^# {3}"Sales EU"\.notes: no primary key and no unique index$/m);
  // a partitioned table is listed once, its partitions explained; views are said not to replicate
  assert.match(text, /^ {6}- archive\.payments {3}# partitioned: its 2 partitions follow it, writes aimed at a partition included$/m);
  assert.doesNotMatch(text, /payments_2024/);
  assert.match(text, /^# {3}public\.big_orders \(view\)$/m);
  assert.match(text, /^# {3}public\.order_totals \(materialized view\)$/m);

  const v = await runCli(['validate', '-f', out]);
  assert.equal(v.code, 0, v.out);

  // With the password and a real target, plan finds every table.
  const dbKey = a.dbname;
  const pwVar = `${dbKey.toUpperCase()}_PASSWORD`;
  assert.match(text, new RegExp(`\\$\\{env:${pwVar}:-\\}`));
  await b.query(`DROP TABLE logs, emails, partial, "Sales EU".notes`);
  const p = await runCli(['plan', '-f', out, '--format', 'json'], { env: { [pwVar]: SUPERPASS, TARGET_URL: b.url } });
  assert.equal(p.code, 0, p.out);
  assert.equal(JSON.parse(p.stdout).errors.length, 0);

  // Never overwrites.
  const again = await runCli(['init', '--from', a.url, '-o', out]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already exists/);
});

test('--tables narrows to a glob over schema.table; stdout without -o', async () => {
  const [a] = await env.fresh('init_glob', DDL, ['a']);
  const r = await runCli(['init', '--from', a.url, '--tables', 'public.*', '--tables', 'Sales EU.Order*']);
  assert.equal(r.code, 0, r.out);
  assert.match(r.stdout, /^ {6}- public\.customers$/m);
  assert.match(r.stdout, /Order ""Lines""/);
  assert.doesNotMatch(r.stdout, /archive\.old_orders/);
  assert.doesNotMatch(r.stdout, /"Sales EU"\.notes/);
  assert.match(r.stdout, /public\.invoice_no/);
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'bucardo.yaml'), r.stdout);
  assert.equal((await runCli(['validate', '-f', path.join(dir, 'bucardo.yaml')])).code, 0);
});

test('a database without any keyed table still gives a valid file; a bad URL is an error', async () => {
  const [a] = await env.fresh('init_empty', 'CREATE TABLE t (x int)', ['a']);
  const dir = tempDir();
  const out = path.join(dir, 'b.yaml');
  const r = await runCli(['init', '--from', a.url, '-o', out]);
  assert.equal(r.code, 0, r.out);
  assert.match(fs.readFileSync(out, 'utf8'), /public\.t: no primary key and no unique index/);
  const v = await runCli(['validate', '-f', out]);
  assert.equal(v.code, 0, v.out);

  const bad = await runCli(['init', '--from', 'mysql://x@y/z']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /not postgres:\/\//);
  const down = await runCli(['init', '--from', 'postgres://u:topsecret@127.0.0.1:1/db']);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /cannot connect/);
  assert.doesNotMatch(down.out, /topsecret/);
});
