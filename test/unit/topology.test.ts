import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateTopologyText, loadTopology } from '../../engine/topology/load.js';
import { BucardoError, TopologyError, type Problem } from '../../engine/errors.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';

const sha = (text: string) => crypto.createHash('sha256').update(text).digest('hex');

/** The topology of these tests lives in a folder with the modules it names (paths are relative to it). */
const DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'bucardo-topology-test-'));
const TOPO = path.join(DIR, 'topo.yaml');
for (const [rel, fn] of [
  ['hooks/before.js', 'before_sync'],
  ['hooks/after.js', 'after_sync'],
  ['hooks/error.js', 'on_error'],
  ['resolve.js', 'resolve'],
]) {
  fs.mkdirSync(path.dirname(path.join(DIR, rel)), { recursive: true });
  fs.writeFileSync(path.join(DIR, rel), `export function ${fn}() {}\n`);
}
process.on('exit', () => fs.rmSync(DIR, { recursive: true, force: true }));

const FULL = `version: 1
name: shop

databases:
  east:
    url: postgres://repl@east.example.com:5432/shop
  west:
    host: west.example.com
    port: \${env:WEST_PORT:-5433}
    dbname: shop
    user: repl
    password: \${env:WEST_PASSWORD}
    sslmode: require
  warehouse:
    url: \${env:WAREHOUSE_URL}
    makedelta: true
  archive:
    url: postgres://repl@archive.example.com/shop

relgroups:
  shop:
    tables:
      - public.customers
      - name: public.Order_Lines
        key: [order_id, Line_No]
        conflict: {priority: [west, east]}
        autokick: false
        makedelta: true
      - match: "public.audit_*"
        conflict: skip
      - '"Sales EU"."Order Lines"'
      - schema: Sales EU
        table: Order.Lines "v2"
        key: [id]
    exclude: [public.audit_tmp, "public.audit_*_old"]
    sequences:
      - public.Orders_id_seq
      - schema: Sales EU
        sequence: Seq One
  unused:
    tables: [other.t]

syncs:
  shop_mm:
    relgroup: shop
    sources: [east, west]
    targets: [warehouse]
    conflict: latest
    onetimecopy: if_empty
    autokick: true
    checktime: 1m30s
    enabled: true
  shop_archive:
    kind: fullcopy
    relgroup: shop
    sources: [east]
    targets: [archive]
    deletemethod: truncate_cascade
    onetimecopy: always
    checktime: 3600
    enabled: false
    strict: false
    isolation: serializable
    lock_tables: true
    analyze_after_copy: false
    vacuum_after_copy: true
    rebuild_index: true
    hooks:
      before_sync: ./hooks/before.js
      after_sync: ./hooks/after.js
      on_error: ./hooks/error.js
  custom_mm:
    relgroup: unused
    sources: [east, west]
    conflict: {custom: ./resolve.js}
`;

const ENV = { WEST_PASSWORD: 's3cret', WAREHOUSE_URL: 'postgres://wh@wh.example.com/wh' };

/** Every problem of `text`, or a failure when it is valid. */
function problems(text: string, env: NodeJS.ProcessEnv = ENV): Problem[] {
  try {
    validateTopologyText(text, TOPO, env);
  } catch (e) {
    if (e instanceof TopologyError) return e.problems;
    throw e;
  }
  assert.fail('expected the topology to be invalid');
}

/** Problems as `LINE:COL: message` strings (no hint), for compact assertions. */
function at(text: string, env?: NodeJS.ProcessEnv): string[] {
  return problems(text, env).map((p) => `${p.line}:${p.col}: ${p.message}`);
}

/** 1-based line of the first line containing `needle`. */
function lineOf(text: string, needle: string): number {
  const i = text.split('\n').findIndex((l) => l.includes(needle));
  assert.ok(i >= 0, needle);
  return i + 1;
}

test('a file with every feature loads, with every default filled in', () => {
  const t = validateTopologyText(FULL, TOPO, ENV);
  assert.equal(t.file, TOPO);
  assert.equal(t.name, 'shop');
  assert.deepEqual([...t.databases.keys()], ['east', 'west', 'warehouse', 'archive']);
  assert.deepEqual(t.databases.get('west'), {
    name: 'west',
    connection: { host: 'west.example.com', port: 5433, dbname: 'shop', user: 'repl', password: 's3cret', sslmode: 'require' },
    makedelta: false,
    pos: { line: 7, col: 3 },
  });
  assert.deepEqual(t.databases.get('warehouse')!.connection, { url: 'postgres://wh@wh.example.com/wh' });
  assert.equal(t.databases.get('warehouse')!.makedelta, true);

  const shop = t.relgroups.get('shop')!;
  assert.equal(shop.tables.length, 5);
  assert.deepEqual(shop.tables[0], { kind: 'name', table: { schema: 'public', name: 'customers' }, pos: { line: lineOf(FULL, 'public.customers'), col: 9 } });
  assert.deepEqual(shop.tables[1], {
    kind: 'name',
    table: { schema: 'public', name: 'order_lines' },
    key: ['order_id', 'Line_No'],
    conflict: { kind: 'priority', order: ['west', 'east'] },
    autokick: false,
    makedelta: true,
    pos: { line: lineOf(FULL, 'public.Order_Lines'), col: 9 },
  });
  assert.deepEqual(shop.tables[2], { kind: 'match', pattern: 'public.audit_*', conflict: { kind: 'skip' }, pos: { line: lineOf(FULL, 'audit_*"'), col: 9 } });
  assert.deepEqual(shop.tables[3]!.kind === 'name' && shop.tables[3]!.table, { schema: 'Sales EU', name: 'Order Lines' });
  assert.deepEqual(shop.tables[4]!.kind === 'name' && shop.tables[4]!.table, { schema: 'Sales EU', name: 'Order.Lines "v2"' });
  assert.deepEqual(
    shop.exclude.map((x) => x.pattern),
    ['public.audit_tmp', 'public.audit_*_old'],
  );
  assert.deepEqual(
    shop.sequences.map((s) => s.seq),
    [
      { schema: 'public', name: 'orders_id_seq' },
      { schema: 'Sales EU', name: 'Seq One' },
    ],
  );
  assert.deepEqual(t.relgroups.get('unused')!.exclude, []);
  assert.deepEqual(t.relgroups.get('unused')!.sequences, []);

  assert.deepEqual(t.syncs.get('shop_mm'), {
    name: 'shop_mm',
    kind: 'delta',
    relgroup: 'shop',
    sources: ['east', 'west'],
    targets: ['warehouse'],
    conflict: { kind: 'latest' },
    onetimecopy: 'if_empty',
    autokick: true,
    checktimeMs: 90_000,
    enabled: true,
    deletemethod: 'truncate',
    strict: true,
    isolation: 'repeatable read',
    lockTables: false,
    analyzeAfterCopy: true,
    vacuumAfterCopy: false,
    rebuildIndex: false,
    hooks: {},
    pos: { line: lineOf(FULL, 'shop_mm:'), col: 3 },
  });
  const archive = t.syncs.get('shop_archive')!;
  assert.equal(archive.kind, 'fullcopy');
  assert.equal(archive.deletemethod, 'truncate_cascade');
  assert.equal(archive.onetimecopy, 'always');
  assert.equal(archive.checktimeMs, 3_600_000);
  assert.equal(archive.enabled, false);
  assert.equal(archive.strict, false);
  assert.equal(archive.isolation, 'serializable');
  assert.equal(archive.lockTables, true);
  assert.equal(archive.analyzeAfterCopy, false);
  assert.equal(archive.vacuumAfterCopy, true);
  assert.equal(archive.rebuildIndex, true);
  const mod = (rel: string, fn: string) => ({
    path: rel,
    file: path.join(DIR, rel),
    export: fn,
    sha256: sha(`export function ${fn}() {}\n`),
    pos: { line: lineOf(FULL, rel), col: FULL.split('\n')[lineOf(FULL, rel) - 1]!.indexOf(rel) + 1 },
  });
  assert.deepEqual(archive.hooks, {
    before_sync: mod('./hooks/before.js', 'before_sync'),
    after_sync: mod('./hooks/after.js', 'after_sync'),
    on_error: mod('./hooks/error.js', 'on_error'),
  });
  assert.deepEqual(t.syncs.get('custom_mm')!.conflict, { kind: 'custom', module: mod('./resolve.js', 'resolve') });
  assert.deepEqual(t.syncs.get('custom_mm')!.targets, []);
  assert.equal(t.syncs.get('custom_mm')!.checktimeMs, null);
});

test('the name defaults to main', () => {
  const t = validateTopologyText('version: 1\ndatabases:\n  a: {url: "postgres://x/y"}\n', 't.yaml', {});
  assert.equal(t.name, 'main');
  assert.equal(t.syncs.size, 0);
  assert.equal(t.relgroups.size, 0);
});

test('run_history: a duration of a minute or more, 14 days by default', () => {
  const base = 'version: 1\ndatabases:\n  a: {url: "postgres://x/y"}\n';
  assert.equal(validateTopologyText(base, 't.yaml', {}).runHistoryMs, 14 * 24 * 3600 * 1000);
  assert.equal(validateTopologyText(`run_history: 30d\n${base}`, 't.yaml', {}).runHistoryMs, 30 * 24 * 3600 * 1000);
  assert.deepEqual(at(`run_history: 10s\n${base}`), ['1:14: run_history: "10s" is less than a minute']);
  assert.match(at(`run_history: forever\n${base}`)[0], /^1:14: run_history: "forever" is not a duration/);
});

test('several problems are reported at once, each at its exact line and column', () => {
  const text = FULL.replace('    checktime: 1m30s\n', '    checktime: 5 fortnights\n    colour: blue\n')
    .replace('  east:\n    url:', '  east:\n    flavour: vanilla\n    url:')
    .replace('    targets: [warehouse]', '    targets: [warehouse, ghost_db]')
    .replace('    sslmode: require', '    sslmode: required');
  const got = at(text);
  assert.deepEqual(got, [
    `6:5: unknown key "flavour" in databases.east`,
    `14:14: databases.west.sslmode: "required" is not one of disable, allow, prefer, require, verify-ca, verify-full`,
    `${lineOf(text, 'ghost_db')}:26: sync "shop_mm" names database "ghost_db" in targets, which is not defined under databases:`,
    `${lineOf(text, 'fortnights')}:16: syncs.shop_mm.checktime: "5 fortnights" is not a duration`,
    `${lineOf(text, 'colour')}:5: unknown key "colour" in syncs.shop_mm`,
  ]);
  const hints = problems(text).map((p) => p.hint);
  assert.equal(hints[1], 'did you mean "require"?');
  assert.match(hints[2]!, /defined databases: east, west, warehouse, archive/);
  assert.match(hints[3]!, /30s, 500ms/);
  assert.match(hints[4]!, /allowed keys here: kind, relgroup, sources/);
});

test('problems carry the file name as given, and TopologyError formats FILE:LINE:COL', () => {
  try {
    validateTopologyText('version: 1\ndatabases:\n  a: {hots: x}\n', '../conf/b.yaml', {});
    assert.fail('invalid');
  } catch (e) {
    assert.ok(e instanceof TopologyError);
    assert.equal(e.problems[0]!.file, '../conf/b.yaml');
    assert.match(e.message, /^\.\.\/conf\/b\.yaml:3:7: unknown key "hots" in databases\.a \(did you mean "host"\?\)/);
  }
});

test('YAML syntax errors are reported with their position', () => {
  const p = problems('version: 1\ndatabases:\n  a: [1, 2\n  b: {url: x}\n');
  assert.ok(p.length >= 1);
  assert.match(p[0]!.message, /^YAML: /);
  assert.ok(p[0]!.line >= 3);
  const dup = problems('version: 1\ndatabases:\n  a: {url: "postgres://h/d"}\n  a: {url: "postgres://h/e"}\n');
  assert.deepEqual(
    dup.map((x) => [x.line, x.col]),
    [[4, 3]],
  );
  assert.match(dup[0]!.message, /unique/);
});

test('an empty file and a missing file are clear errors', () => {
  assert.deepEqual(at(''), ['1:1: the topology file is empty']);
  assert.throws(
    () => loadTopology('/nonexistent/dir/bucardo.yaml'),
    (e: unknown) => e instanceof BucardoError && e.code === 'topology_not_found' && e.message === 'topology file /nonexistent/dir/bucardo.yaml does not exist',
  );
  assert.throws(
    () => loadTopology('/'),
    (e: unknown) => e instanceof BucardoError && /is a directory/.test(e.message),
  );
});

test('env interpolation: several per string, defaults, empty values, $${ escape', () => {
  const text = `version: 1
databases:
  a:
    url: postgres://\${env:U}@\${env:H:-localhost}:\${env:P:-5432}/\${env:D}
    password: "$\${env:literal}"
`;
  const t = validateTopologyText(text, 't.yaml', { U: 'repl', D: 'shop', P: '' });
  assert.equal(t.databases.get('a')!.connection.url, 'postgres://repl@localhost:5432/shop');
  assert.equal(t.databases.get('a')!.connection.password, '${env:literal}');
});

test('env interpolation: every unset variable without a default is reported at its scalar, by name', () => {
  const text = `version: 1
databases:
  a:
    url: \${env:NOPE_URL}
  b:
    host: h
    password: x\${env:NOPE_ONE}y\${env:NOPE_TWO}
    user: \${env:bad-name}
`;
  assert.deepEqual(at(text, {}), [
    '4:10: environment variable NOPE_URL is not set',
    '7:15: environment variable NOPE_ONE is not set',
    '7:15: environment variable NOPE_TWO is not set',
    '8:11: ${env:bad-name} is not a valid environment variable reference',
  ]);
  assert.equal(problems(text, {})[0]!.hint, 'set NOPE_URL, or give a default: ${env:NOPE_URL:-default}');
});

test('no message ever shows a password or a URL', () => {
  const text = `version: 1
databases:
  a:
    url: "mysql://u:hunter2@h/db"
  b:
    url: postgres://u:\${env:PW}@h/db
    password: 12345
    port: 70000
syncs:
  s: {relgroup: g, sources: [a], targets: [b], conflict: {priority: [a, b]}}
relgroups:
  g: {tables: [t]}
`;
  const out = problems(text, { PW: 'hunter3' })
    .map((p) => `${p.message} ${p.hint ?? ''}`)
    .join('\n');
  assert.match(out, /url is not a valid postgres/);
  assert.match(out, /password must be a string/);
  for (const secret of ['hunter2', 'hunter3', '12345', 'mysql']) assert.ok(!out.includes(secret), `${secret} leaked:\n${out}`);
});

test('did you mean: keys, database and relgroup names, enum values', () => {
  const text = FULL.replace('    sources: [east, west]\n    targets: [warehouse]', '    source: [east, west]\n    targets: [warehous]')
    .replace('    relgroup: shop\n    sources: [east]', '    relgroup: shoop\n    sources: [east]')
    .replace('onetimecopy: always', 'onetimecopy: alway');
  const p = problems(text);
  const hintAt = (needle: string) => p.find((x) => x.line === lineOf(text, needle))?.hint;
  assert.equal(hintAt('source: [east, west]'), 'did you mean "sources"?');
  assert.equal(hintAt('warehous]'), 'did you mean "warehouse"?');
  assert.equal(hintAt('shoop'), 'did you mean "shop"?');
  assert.equal(hintAt('alway'), 'did you mean "always"?');
  // the typo'd key is not also reported as a missing "sources"
  assert.ok(!p.some((x) => /missing the required key "sources"/.test(x.message)), JSON.stringify(p));
});

test('oneOf entries: the branch the user meant is the one reported', () => {
  const text = `version: 1
databases:
  a: {url: "postgres://h/a"}
relgroups:
  g:
    tables:
      - name: t
        kee: [id]
      - 42
      - {match: "public.*", key: [id]}
      - {name: u, conflict: {priority: a}}
      - {name: v, conflict: newest}
    sequences:
      - {schema: s}
`;
  assert.deepEqual(at(text), [
    '8:9: unknown key "kee" in relgroups.g.tables[0]',
    '9:9: relgroups.g.tables[1] must be a string, or a mapping with "name", or a mapping with "match", or a mapping with "table"',
    '10:29: unknown key "key" in relgroups.g.tables[2]',
    '11:40: relgroups.g.tables[3].conflict.priority must be a list',
    '12:29: relgroups.g.tables[4].conflict: "newest" is not one of latest, latest_table, latest_sync, random, skip, abort',
    '14:9: relgroups.g.sequences[0] is missing the required key "sequence"',
  ]);
});

test('schema details: version, name, object names, ports, types', () => {
  const text = `version: 2
name: Shop-1
databases:
  "bad name": {host: h}
  p: {host: h, port: 0}
  q: {host: h, port: "99x"}
  r: {host: h, makedelta: "yes"}
  s: {url: "postgres://h/s", port: "6543"}
`;
  assert.deepEqual(at(text), [
    '1:10: version must be 1',
    '2:7: name "Shop-1" is not a valid topology name',
    '4:3: "bad name" is not a valid database name',
    '5:22: databases.p.port must be a port number from 1 to 65535',
    '6:22: databases.q.port must be a port number from 1 to 65535',
    '7:27: databases.r.makedelta must be true or false',
  ]);
  const ok = validateTopologyText('version: 1\ndatabases:\n  s: {host: h, port: "6543"}\n', 't.yaml', {});
  assert.equal(ok.databases.get('s')!.connection.port, 6543);
});

test('table names: folding, exact form, bad syntax and duplicates reported at the entry', () => {
  const text = `version: 1
databases:
  a: {url: "postgres://h/a"}
relgroups:
  g:
    tables:
      - Public.Customers
      - '"unbalanced'
      - a.b.c
      - public.customers
      - {schema: X, table: "Y"}
      - {name: '"Y"', key: [A]}
      - {table: "${'n'.repeat(64)}"}
      - {match: audit_log}
    exclude: ['"open']
    sequences: [x.y.z]
`;
  assert.deepEqual(at(text), [
    '8:9: table name "\\"unbalanced" has an unbalanced double quote',
    '9:9: table name "a.b.c" has 3 dot-separated parts; write schema.table (database-qualified names are not supported)',
    '10:9: relgroup "g" lists table "public.customers" twice (also entry 1)',
    `13:17: table name "${'n'.repeat(64)}" has a part of 64 bytes; PostgreSQL identifiers are at most 63 bytes`,
    '14:17: match pattern "audit_log" can match no table: it is a glob over schema.table',
    '15:15: table name "\\"open" has an unbalanced double quote',
    '16:17: sequence name "x.y.z" has 3 dot-separated parts; write schema.table (database-qualified names are not supported)',
  ]);
  const t = validateTopologyText(
    text
      .replace(/ {6}- '"unbalanced'\n {6}- a\.b\.c\n {6}- public\.customers\n/, '')
      .replace(/ {6}- \{table: "n+"\}\n {6}- \{match: audit_log\}\n/, '')
      .replace(`['"open']`, '["x.*"]')
      .replace('[x.y.z]', '[X.Y]'),
    't.yaml',
    {},
  );
  const tables = t.relgroups.get('g')!.tables.map((e) => (e.kind === 'name' ? e.table : e.pattern));
  assert.deepEqual(tables, [
    { schema: 'public', name: 'customers' },
    { schema: 'X', name: 'Y' },
    { schema: 'public', name: 'Y' },
  ]);
  assert.deepEqual(t.relgroups.get('g')!.sequences[0]!.seq, { schema: 'x', name: 'y' });
});
