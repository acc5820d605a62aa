/**
 * `bucardo compare` against real clusters: equal tables, a changed value, a missing row
 * and an extra row, on integer, composite and text keys and a table with an odd name;
 * large enough tables that the chunks are cut again before the row-level comparison.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useClusters, writeTopology, simpleTopology } from '../helpers/env.js';
import { runCli } from '../helpers/cli.js';

const env = useClusters(['a', 'b']);

const ODD = `"Sales EU"."Order ""Lines"" ✓"`;
const DDL = `
  CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(12,2), twice numeric GENERATED ALWAYS AS (price * 2) STORED);
  CREATE TABLE lines (order_id bigint, line_no int, qty int, note text, PRIMARY KEY (order_id, line_no));
  CREATE TABLE tags (code text PRIMARY KEY, label text);
  CREATE SCHEMA "Sales EU";
  CREATE TABLE ${ODD} ("Clé" text PRIMARY KEY, "Menge Ω" int, ts timestamptz);
  INSERT INTO items SELECT g, 'item ' || g, g * 1.25 FROM generate_series(1, 5000) g;
  INSERT INTO lines SELECT o, l, o * l, CASE WHEN l = 2 THEN NULL ELSE 'n,"' || o END FROM generate_series(1, 700) o, generate_series(1, 4) l;
  INSERT INTO tags SELECT 'tag-' || g || CASE WHEN g % 3 = 0 THEN ' Ä' ELSE '' END, 'label ' || g FROM generate_series(1, 300) g;
  INSERT INTO ${ODD} SELECT 'k ' || g || ' "q"', g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour' FROM generate_series(1, 50) g;
`;
const TABLES = ['public.items', 'public.lines', 'public.tags', ODD];

interface Json {
  format_version: string;
  sync: string;
  equal: boolean;
  tables: { table: string; equal: boolean; rows: Record<string, number>; differences: { key: Record<string, unknown>; kind: string; databases: string[] }[] }[];
}

async function setup(tag: string, apply = true) {
  const [a, b] = await env.fresh(tag, DDL);
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: TABLES }));
  if (apply) {
    const r = await runCli(['apply', '-f', file, '--auto-approve']);
    assert.equal(r.code, 0, r.out);
  }
  return { a, b, file };
}

test('equal tables: exit 0, every table equal, row counts per database', async () => {
  const { file } = await setup('cmp_equal');
  const r = await runCli(['compare', 's1', '-f', file, '--format', 'json', '--chunk-rows', '700']);
  assert.equal(r.code, 0, r.out);
  const j = JSON.parse(r.stdout) as Json;
  assert.equal(j.format_version, '1');
  assert.equal(j.sync, 's1');
  assert.equal(j.equal, true);
  assert.deepEqual(
    j.tables.map((t) => t.table),
    ['"Sales EU"."Order ""Lines"" ✓"', 'public.items', 'public.lines', 'public.tags'],
  );
  const items = j.tables.find((t) => t.table === 'public.items')!;
  assert.deepEqual(items.rows, { a: 5000, b: 5000 });
  assert.ok(j.tables.every((t) => t.equal && t.differences.length === 0));

  const text = await runCli(['compare', 's1', '-f', file]);
  assert.equal(text.code, 0, text.out);
  assert.match(text.stdout, /^public\.items: equal \(5000 rows on each database\)$/m);
  assert.match(text.stdout, /Sync s1: all 4 tables equal on a, b\./);
});

test('a changed value, a missing row and an extra row are found, per key type', async () => {
  const { a, b, file } = await setup('cmp_diff');
  // Changes made as replica so the capture triggers stay out of it (only the data differs).
  await b.query(`SET session_replication_role = replica;
    UPDATE items SET price = price + 0.01 WHERE id = 2345;
    DELETE FROM items WHERE id = 4999;
    INSERT INTO items (id, name, price) VALUES (6001, 'new', 1);
    UPDATE lines SET note = 'changed' WHERE order_id = 321 AND line_no = 3;
    DELETE FROM lines WHERE order_id = 500 AND line_no = 2;
    INSERT INTO tags VALUES ('tag-0 extra', 'x');
    UPDATE tags SET label = NULL WHERE code = 'tag-3 Ä';
    DELETE FROM ${ODD} WHERE "Clé" = 'k 7 "q"';`);
  await a.query(`SET session_replication_role = replica; UPDATE ${ODD} SET ts = ts + interval '1 microsecond' WHERE "Menge Ω" = 20`);
  const r = await runCli(['compare', 's1', '-f', file, '--format', 'json', '--chunk-rows', '1000']);
  assert.equal(r.code, 2, r.out);
  const j = JSON.parse(r.stdout) as Json;
  assert.equal(j.equal, false);
  const diffs = (name: string) => j.tables.find((t) => t.table === name)!.differences;
  assert.deepEqual(diffs('public.items'), [
    { key: { id: 2345 }, kind: 'different', databases: ['b'] },
    { key: { id: 4999 }, kind: 'missing', databases: ['b'] },
    { key: { id: 6001 }, kind: 'extra', databases: ['b'] },
  ]);
  assert.deepEqual(j.tables.find((t) => t.table === 'public.items')!.rows, { a: 5000, b: 5000 });
  assert.deepEqual(diffs('public.lines'), [
    { key: { order_id: 321, line_no: 3 }, kind: 'different', databases: ['b'] },
    { key: { order_id: 500, line_no: 2 }, kind: 'missing', databases: ['b'] },
  ]);
  // Byte order (COLLATE "C"): 'tag-0 extra' < 'tag-3 Ä'
  assert.deepEqual(diffs('public.tags'), [
    { key: { code: 'tag-0 extra' }, kind: 'extra', databases: ['b'] },
    { key: { code: 'tag-3 Ä' }, kind: 'different', databases: ['b'] },
  ]);
  assert.deepEqual(diffs(ODD), [
    { key: { Clé: 'k 20 "q"' }, kind: 'different', databases: ['b'] },
    { key: { Clé: 'k 7 "q"' }, kind: 'missing', databases: ['b'] },
  ]);

  const text = await runCli(['compare', 's1', '-f', file]);
  assert.equal(text.code, 2, text.out);
  assert.match(text.stdout, /^public\.items: DIFFERENT \(5000 rows on each database\)$/m);
  assert.match(text.stdout, /^ {2}id=4999: missing on b \(present on a\)$/m);
  assert.match(text.stdout, /^ {2}id=6001: extra on b \(absent on a\)$/m);
  assert.match(text.stdout, /Sync s1: 4 of 4 tables differ\./);
});

test('the first 10 differing keys per table, in key order, when many differ', async () => {
  const { b, file } = await setup('cmp_many');
  await b.query(`SET session_replication_role = replica; DELETE FROM items WHERE id % 97 = 0`);
  const r = await runCli(['compare', 's1', '-f', file, '--format', 'json']);
  assert.equal(r.code, 2, r.out);
  const t = (JSON.parse(r.stdout) as Json).tables.find((x) => x.table === 'public.items')!;
  assert.deepEqual(
    t.differences.map((d) => d.key.id),
    [97, 194, 291, 388, 485, 582, 679, 776, 873, 970],
  );
  assert.deepEqual(t.rows, { a: 5000, b: 5000 - 51 });
  assert.equal((t as unknown as { truncated: boolean }).truncated, true);
});

test('before apply, the tables come from the relgroup resolved on the live catalogs', async () => {
  const { b, file } = await setup('cmp_noapply', false);
  await b.query(`DELETE FROM tags WHERE code = 'tag-1'`);
  const r = await runCli(['compare', 's1', '-f', file]);
  assert.equal(r.code, 2, r.out);
  assert.match(r.stdout, /^public\.tags: DIFFERENT \(a 300, b 299 rows\)$/m);
  assert.match(r.stdout, /^ {2}code=tag-1: missing on b \(present on a\)$/m);
});

test('text keys under a non-C collation on one database still line up (compared in byte order)', async () => {
  const ddl = `CREATE TABLE words (w text PRIMARY KEY, n int);
    INSERT INTO words SELECT CASE WHEN g % 2 = 0 THEN upper(md5(g::text)) ELSE md5(g::text) END, g FROM generate_series(1, 3000) g;`;
  const [a, b] = await env.fresh('cmp_icu', ddl);
  await a.query(`ALTER TABLE words ALTER COLUMN w TYPE text COLLATE "und-x-icu"`);
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ['words'] }));
  const eq = await runCli(['compare', 's1', '-f', file, '--chunk-rows', '200', '--format', 'json']);
  assert.equal(eq.code, 0, eq.out);
  await b.query(`DELETE FROM words WHERE n IN (10, 11, 12)`);
  const r = await runCli(['compare', 's1', '-f', file, '--chunk-rows', '200', '--format', 'json']);
  assert.equal(r.code, 2, r.out);
  const keys = (JSON.parse(r.stdout) as Json).tables[0].differences.map((d) => d.key.w as string);
  const want = (await a.query(`SELECT w FROM words WHERE n IN (10, 11, 12) ORDER BY w COLLATE "C"`)).rows.map((x) => x.w);
  assert.deepEqual(keys, want);
});

test('an empty reference against a full target: the first extra keys, in order', async () => {
  const [a, b] = await env.fresh('cmp_empty', 'CREATE TABLE t (id bigint PRIMARY KEY, v text)');
  await b.query(`INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 30000) g; ANALYZE t`);
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ['t'] }));
  const r = await runCli(['compare', 's1', '-f', file, '--format', 'json', '--chunk-rows', '2000']);
  assert.equal(r.code, 2, r.out);
  const t = (JSON.parse(r.stdout) as Json).tables[0]!;
  assert.deepEqual(t.rows, { a: 0, b: 30000 });
  assert.deepEqual(
    t.differences.map((d) => [d.key.id, d.kind, d.databases.join()]),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((i) => [i, 'extra', 'b']),
  );
});

test('an unknown sync or an unreachable database is an error (exit 1), without a password', async () => {
  const { file } = await setup('cmp_err', false);
  const r = await runCli(['compare', 'nope', '-f', file]);
  assert.equal(r.code, 1, r.out);
  assert.match(r.stderr, /sync nope is not in .*bucardo\.yaml \(syncs: s1\)/);
  assert.match(r.stderr, /s1/);

  const bad = writeTopology({
    version: 1,
    databases: { a: { url: 'postgres://u:secretpw@127.0.0.1:1/x' }, b: { url: 'postgres://u:secretpw@127.0.0.1:1/y' } },
    relgroups: { g: { tables: ['t'] } },
    syncs: { s1: { relgroup: 'g', sources: ['a'], targets: ['b'] } },
  });
  const u = await runCli(['compare', 's1', '-f', bad]);
  assert.equal(u.code, 1, u.out);
  assert.match(u.stderr, /cannot connect to database/);
  assert.doesNotMatch(u.out, /secretpw/);
});
