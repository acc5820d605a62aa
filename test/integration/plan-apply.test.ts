// plan / apply / destroy against real clusters: the loop users run in CI and deploys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { useClusters, writeTopology, simpleTopology, tempDir, type TestDb } from '../helpers/env.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { bucardoObjects } from '../helpers/install.js';
import { SUPERPASS } from '../../cli/demo/clusters.js';

const env = useClusters(['a', 'b']);

const DDL = `
CREATE TABLE public.items (id integer PRIMARY KEY, name text NOT NULL, qty integer);
CREATE TABLE public.tags (code text PRIMARY KEY, label text);
CREATE FUNCTION public.user_touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER user_touch BEFORE INSERT ON public.items FOR EACH ROW EXECUTE FUNCTION public.user_touch();
`;

const show = (r: CliResult) => `\nexit=${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
const lastLine = (s: string) => s.trim().split('\n').pop()!.trim();

async function cli(args: string[], code: number | number[], opts: Parameters<typeof runCli>[1] = {}): Promise<CliResult> {
  const r = await runCli(args, opts);
  const codes = ([] as number[]).concat(code);
  assert.ok(codes.includes(r.code ?? -1), `bucardo ${args.join(' ')}: expected exit ${codes.join('|')}${show(r)}`);
  assert.ok(!r.out.includes(SUPERPASS), `bucardo ${args.join(' ')} printed the password${show(r)}`);
  assert.ok(!/^\s{4}at /m.test(r.out), `no stack trace expected${show(r)}`);
  return r;
}
const apply = (file: string) => cli(['apply', '-f', file, '--auto-approve'], 0);
async function expectNoChanges(file: string) {
  const r = await cli(['plan', '-f', file, '--detailed-exitcode'], 0);
  assert.equal(lastLine(r.stdout), 'No changes.', show(r));
}
async function planJson(file: string, code = 0) {
  const r = await cli(['plan', '-f', file, '--format', 'json'], code);
  return JSON.parse(r.stdout) as {
    changes: { database: string; action: string; object_type: string; object: string; reason: string; diff?: string }[];
    summary: { add: number; change: number; destroy: number };
    errors: { code: string; database: string | null; message: string }[];
  };
}

async function triggers(db: TestDb, table: string) {
  const r = await db.query<{ name: string; enabled: string; oid: string }>(
    `SELECT tgname AS name, tgenabled AS enabled, oid::text FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal ORDER BY 1`,
    [table],
  );
  return r.rows;
}

async function catalogOids(db: TestDb): Promise<string> {
  const r = await db.query<{ x: string }>(`
    SELECT string_agg(x, E'\\n' ORDER BY x) AS x FROM (
      SELECT 'trigger ' || tgname || ' ' || oid || ' ' || tgenabled::text AS x FROM pg_trigger WHERE NOT tgisinternal
      UNION ALL SELECT 'proc ' || proname || ' ' || oid || ' ' || md5(prosrc) FROM pg_proc WHERE pronamespace::regnamespace::text NOT IN ('pg_catalog', 'information_schema')
      UNION ALL SELECT 'class ' || relname || ' ' || oid FROM pg_class WHERE relnamespace::regnamespace::text NOT IN ('pg_catalog', 'information_schema', 'pg_toast')) s`);
  return r.rows[0].x;
}

async function fresh(tag: string, tables: unknown[] = ['public.items', 'public.tags'], extra: Record<string, unknown> = {}) {
  const [a, b] = await env.fresh(tag, DDL);
  await a.query(`INSERT INTO public.items VALUES (1, 'one', 1), (2, 'two', 2)`);
  const topo = simpleTopology({ sources: [a], targets: [b], tables, ...extra });
  const file = writeTopology(topo);
  return { a, b, file, topo };
}

test('a first plan lists the creates with the summary line and changes nothing; JSON and Markdown agree', async () => {
  const { a, b, file } = await fresh('first');
  const r = await cli(['plan', '-f', file, '--no-color'], 0);
  assert.match(lastLine(r.stdout), /^Plan: \d+ to add, 0 to change, 0 to destroy\.$/, show(r));
  assert.match(r.stdout, /^\s+\+ trigger bucardo_main_[0-9a-f]{12}_i on public\.items$/m);
  assert.match(r.stdout, /^\s+\+ schema bucardo_main$/m);
  assert.match(r.stdout, /onetimecopy/);
  assert.doesNotMatch(r.stdout, new RegExp(`${String.fromCharCode(27)}\\[`));
  assert.deepEqual(await bucardoObjects(a), [], 'plan must not install anything');
  assert.deepEqual(await bucardoObjects(b), []);
  const doc = await planJson(file);
  const n = Number(/Plan: (\d+) to add/.exec(r.stdout)![1]);
  assert.deepEqual(doc.summary, { add: n, change: 0, destroy: 0 });
  assert.ok(doc.changes.every((c) => c.action === 'create'));
  // capture only on the source, registration on both
  assert.ok(doc.changes.filter((c) => c.database === 'b').every((c) => !['trigger', 'function', 'delta_table'].includes(c.object_type)));
  assert.ok(doc.changes.some((c) => c.database === 'a' && c.object_type === 'trigger'));
  const md = await cli(['plan', '-f', file, '--format', 'markdown'], 0);
  assert.match(md.stdout, new RegExp(`\\*\\*${n} to add, 0 to change, 0 to destroy\\.\\*\\*`));
  assert.match(md.stdout, /^\| `\+` \| a \| trigger bucardo_main_/m);
  const d = await cli(['plan', '-f', file, '--detailed-exitcode'], 2);
  assert.match(lastLine(d.stdout), /^Plan: /);
});

test('apply installs capture; then plan says No changes. and a second apply runs no DDL', async () => {
  const { a, b, file } = await fresh('apply');
  const r = await apply(file);
  assert.match(r.stdout, /Apply complete: \d+ added, 0 changed, 0 destroyed\./);
  const trg = await triggers(a, 'public.items');
  assert.deepEqual(
    trg.map((t) => t.name.replace(/[0-9a-f]{12}/, 'ID')),
    ['bucardo_main_ID_d', 'bucardo_main_ID_i', 'bucardo_main_ID_k', 'bucardo_main_ID_t', 'bucardo_main_ID_u', 'user_touch'],
  );
  assert.ok(trg.every((t) => t.enabled === 'O'));
  assert.deepEqual(
    (await triggers(b, 'public.items')).map((t) => t.name),
    ['user_touch'],
    'a target gets no capture',
  );
  await expectNoChanges(file);
  const before = [await catalogOids(a), await catalogOids(b)];
  const again = await apply(file);
  assert.match(again.stdout, /No changes\./);
  assert.deepEqual([await catalogOids(a), await catalogOids(b)], before, 'the second apply must not drop or create anything');
  // the capture works: a write on the source lands in the delta table
  await a.query(`UPDATE public.items SET qty = 5 WHERE id = 1`);
  const delta = await a.one(`SELECT count(*)::int AS n FROM bucardo_main.sync_relation WHERE sync = 's1'`);
  assert.equal(delta.n, 2);
});

test('drift: a dropped, a disabled and an edited capture object are shown and repaired', async () => {
  const { a, file } = await fresh('drift');
  await apply(file);
  const [del] = (await triggers(a, 'public.tags')).filter((t) => t.name.endsWith('_d'));
  const [upd] = (await triggers(a, 'public.items')).filter((t) => t.name.endsWith('_u'));
  const fn = (await a.one(`SELECT p.proname AS name FROM pg_proc p JOIN pg_trigger t ON t.tgfoid = p.oid WHERE t.tgname = $1`, [upd.name])).name;
  await a.query(`DROP TRIGGER "${del.name}" ON public.tags`);
  await a.query(`ALTER TABLE public.items DISABLE TRIGGER "${upd.name}"`);
  await a.query(`CREATE OR REPLACE FUNCTION bucardo_main."${fn}"() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$`);
  const doc = await planJson(file);
  const by = (t: string) => doc.changes.find((c) => c.object.includes(t))!;
  assert.equal(by(del.name).action, 'create');
  assert.match(by(del.name).reason, /missing/);
  assert.equal(by(upd.name).action, 'update');
  assert.match(by(upd.name).reason, /disabled/);
  assert.equal(by(fn).action, 'update');
  assert.match(by(fn).diff!, /^-BEGIN RETURN NULL; END$/m);
  assert.match(by(fn).diff!, /^\+\s+INSERT INTO "bucardo_main"\."delta_/m);
  assert.deepEqual(doc.summary, { add: 1, change: 2, destroy: 0 });
  const text = await cli(['plan', '-f', file], 0);
  assert.match(text.stdout, /^\s+~ function bucardo_main\.capture_/m);
  assert.match(text.stdout, /^\s+-BEGIN RETURN NULL; END$/m);
  assert.equal(lastLine(text.stdout), 'Plan: 1 to add, 2 to change, 0 to destroy.');
  await apply(file);
  await expectNoChanges(file);
  assert.ok((await triggers(a, 'public.items')).every((t) => t.enabled === 'O'));
});

test('a table removed from the relgroup gives destroy changes; apply removes only its capture', async () => {
  const { a, b, file, topo } = await fresh('remove');
  await apply(file);
  (topo.relgroups as { g: { tables: unknown[] } }).g.tables = ['public.items'];
  writeTopology(topo, path.dirname(file));
  const doc = await planJson(file);
  assert.ok(doc.summary.destroy >= 6, JSON.stringify(doc.summary));
  assert.ok(
    doc.changes.every((c) => c.action === 'destroy' || (c.action === 'update' && c.object === 'sync s1')),
    JSON.stringify(doc.changes),
  );
  assert.ok(doc.changes.some((c) => c.database === 'b' && c.object === 'sync s1: table public.tags'));
  await apply(file);
  assert.deepEqual(
    (await triggers(a, 'public.tags')).map((t) => t.name),
    [],
  );
  assert.equal((await triggers(a, 'public.items')).length, 6);
  await expectNoChanges(file);
  assert.equal((await b.one(`SELECT count(*)::int AS n FROM bucardo_main.sync_relation`)).n, 1);
});

test('a saved plan applies exactly; a stale plan file is refused and changes nothing', async () => {
  const { a, file } = await fresh('planfile');
  const dir = path.dirname(file);
  const pf = path.join(dir, 'plan.json');
  await cli(['plan', '-f', file, '-o', pf], 0);
  assert.ok(fs.existsSync(pf));
  // something changes in a database between plan and apply
  await a.query(`CREATE TABLE public.unrelated (id int PRIMARY KEY)`);
  const before = await catalogOids(a);
  const r = await cli(['apply', '-f', file, pf], 1);
  assert.match(r.stderr, /database a changed since the plan file was made/);
  assert.equal(await catalogOids(a), before, 'a refused plan changes nothing');
  // a fresh plan file applies
  await cli(['plan', '-f', file, '-o', pf], 0);
  await cli(['apply', '-f', file, pf], 0);
  await expectNoChanges(file);
  // and a plan file of an edited topology is refused too
  await cli(['plan', '-f', file, '-o', pf], 0);
  fs.appendFileSync(file, '\n# edited\n');
  const r2 = await cli(['apply', '-f', file, pf], 1);
  assert.match(r2.stderr, /another version/);
});

test('two concurrent applies end consistent: each object installed once, then No changes.', async () => {
  const { a, b, file } = await fresh('concurrent');
  const [r1, r2] = await Promise.all([runCli(['apply', '-f', file, '--auto-approve']), runCli(['apply', '-f', file, '--auto-approve'])]);
  assert.equal(r1.code, 0, show(r1));
  assert.equal(r2.code, 0, show(r2));
  assert.equal((await triggers(a, 'public.items')).length, 6);
  assert.equal((await b.one(`SELECT count(*)::int AS n FROM bucardo_main.sync_relation`)).n, 2);
  await expectNoChanges(file);
});

test('destroy removes every bucardo object and keeps every user row; destroy needs approval', async () => {
  const { a, b, file } = await fresh('destroy');
  await apply(file);
  await a.query(`INSERT INTO public.items VALUES (3, 'three', 3)`);
  await b.query(`INSERT INTO public.items VALUES (99, 'target only', 9)`);
  const refused = await cli(['destroy', '-f', file], 1, { input: 'yes\n' });
  assert.match(refused.stderr, /no terminal/);
  assert.notDeepEqual(await bucardoObjects(a), []);
  const r = await cli(['destroy', '-f', file, '--auto-approve'], 0);
  assert.match(r.stdout, /Destroy complete: 0 added, 0 changed, \d+ destroyed\./);
  assert.deepEqual(await bucardoObjects(a), []);
  assert.deepEqual(await bucardoObjects(b), []);
  assert.deepEqual(
    (await triggers(a, 'public.items')).map((t) => t.name),
    ['user_touch'],
  );
  assert.equal((await a.one(`SELECT string_agg(id::text, ',' ORDER BY id) AS ids FROM public.items`)).ids, '1,2,3');
  assert.equal((await b.one(`SELECT string_agg(id::text, ',' ORDER BY id) AS ids FROM public.items`)).ids, '99');
  const again = await cli(['destroy', '-f', file, '--auto-approve'], 0);
  assert.equal(lastLine(again.stdout), 'No changes.');
});

// Names with spaces, double quotes, dots, unicode, reserved words, and 63 bytes.
const LONG = `${'l'.repeat(60)}ong`; // 63 bytes
const ODD_DDL = `
CREATE SCHEMA "Sales EU";
CREATE TABLE "Sales EU"."Order.Lines ""v2""" ("order" int, "line no" int, "sélect" text, PRIMARY KEY ("order", "line no"));
CREATE SCHEMA "select";
CREATE TABLE "select"."from" ("größe" text PRIMARY KEY, "where" int);
CREATE TABLE public."${LONG}" (id bigint PRIMARY KEY, v text);
CREATE TABLE public."Ünïcødé ☃" ("ключ" uuid PRIMARY KEY, v text);
`;

test('plan, apply, re-plan and destroy with odd names: spaces, quotes, dots, unicode, reserved words, 63 bytes', async () => {
  const [a, b] = await env.fresh('odd', ODD_DDL);
  const tables = ['"Sales EU"."Order.Lines ""v2"""', { schema: 'select', table: 'from' }, `public."${LONG}"`, 'public."Ünïcødé ☃"'];
  const file = writeTopology(simpleTopology({ sources: [a, b], tables, name: 'odd_names' }));
  const doc = await planJson(file);
  assert.equal(doc.errors.length, 0, JSON.stringify(doc.errors));
  assert.ok(
    doc.changes.some((c) => /^trigger bucardo_odd_names_[0-9a-f]{12}_i on "Sales EU"\."Order\.Lines ""v2"""$/.test(c.object)),
    JSON.stringify(doc.changes.map((c) => c.object)),
  );
  await apply(file);
  for (const db of [a, b]) {
    for (const t of ['"Sales EU"."Order.Lines ""v2"""', '"select"."from"', `public."${LONG}"`, 'public."Ünïcødé ☃"']) {
      assert.equal((await triggers(db, t)).length, 5, `capture on ${t} in ${db.name}`);
    }
  }
  // the capture records the key of each write
  await a.query(`INSERT INTO "Sales EU"."Order.Lines ""v2""" VALUES (1, 2, 'x')`);
  const id = doc.changes.find((c) => c.object.endsWith('on "Sales EU"."Order.Lines ""v2"""'))!.object.match(/_([0-9a-f]{12})_/)![1];
  const row = await a.one(`SELECT "order", "line no" FROM bucardo_odd_names."delta_${id}"`);
  assert.deepEqual(row, { order: 1, 'line no': 2 });
  await expectNoChanges(file);
  await cli(['destroy', '-f', file, '--auto-approve'], 0);
  assert.deepEqual(await bucardoObjects(a), []);
  assert.deepEqual(await bucardoObjects(b), []);
});

test('problems that block apply are errors with exit 1: missing table, no key, column mismatch, privilege, unreachable', async () => {
  const [a, b] = await env.fresh('errors', DDL);
  await a.query(
    `CREATE TABLE public.keyless (v text); CREATE TABLE public.only_a (id int PRIMARY KEY); CREATE TABLE public.shape (id int PRIMARY KEY, v text)`,
  );
  await b.query(`CREATE TABLE public.keyless (v text); CREATE TABLE public.shape (id int PRIMARY KEY, v integer)`);
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ['public.keyless', 'public.only_a', 'public.shape', 'public.nowhere'] }));
  const r = await cli(['plan', '-f', file], 1);
  assert.match(r.stderr, /table public\.nowhere of relgroup g \(.*:\d+\) does not exist on database a/);
  assert.match(r.stderr, /table public\.keyless \(sync s1\) has no primary key and no unique index on NOT NULL columns/);
  assert.match(r.stderr, /table public\.only_a \(sync s1\) does not exist on database b/);
  assert.match(r.stderr, /column v is text on a but integer on b/);
  const doc = await planJson(file, 1);
  assert.deepEqual([...new Set(doc.errors.map((e) => e.code))].sort(), ['column_mismatch', 'missing_table', 'no_key']);
  const before = await bucardoObjects(a);
  await cli(['apply', '-f', file, '--auto-approve'], 1);
  assert.deepEqual(await bucardoObjects(a), before, 'a blocked apply changes nothing');

  // strict: false turns the mismatch into a warning
  const f2 = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ['public.shape'], sync: { strict: false } }));
  const r2 = await cli(['plan', '-f', f2], 0);
  assert.match(r2.stdout, /warning: table public\.shape differs/);

  // a user without TRIGGER on the source table, nor the right to set session_replication_role on the target
  await a.query(`CREATE ROLE weak LOGIN PASSWORD 'weak-pw-123'; GRANT SELECT ON public.items TO weak; GRANT CREATE ON DATABASE "${a.dbname}" TO weak`);
  await b.query(
    `DO $$BEGIN CREATE ROLE weak LOGIN PASSWORD 'weak-pw-123'; EXCEPTION WHEN duplicate_object THEN NULL; END$$; GRANT SELECT, INSERT, UPDATE ON public.items TO weak`,
  );
  const weak = (db: TestDb) => db.cluster.url(db.dbname, 'weak', 'weak-pw-123');
  const f3 = writeTopology({
    version: 1,
    databases: { a: { url: weak(a) }, b: { url: weak(b) } },
    relgroups: { g: { tables: ['public.items'] } },
    syncs: { s1: { relgroup: 'g', sources: ['a'], targets: ['b'] } },
  });
  const r3 = await cli(['plan', '-f', f3], 1);
  assert.match(r3.stderr, /user weak lacks TRIGGER on public\.items on database a/);
  assert.match(r3.stderr, /user weak lacks DELETE on public\.items on database b/);
  assert.match(r3.stderr, /may not set session_replication_role/);
  assert.ok(!r3.out.includes('weak-pw-123'));

  // an unreachable database: named, no password printed
  const f4 = writeTopology({
    version: 1,
    databases: { a: { url: a.url }, gone: { url: 'postgres://repl:Sup3rS3cret@127.0.0.1:1/nowhere' } },
    relgroups: { g: { tables: ['public.items'] } },
    syncs: { s1: { relgroup: 'g', sources: ['a'], targets: ['gone'] } },
  });
  for (const format of ['text', 'json', 'markdown']) {
    const r4 = await cli(['plan', '-f', f4, '--format', format], 1);
    assert.match(r4.out, /cannot connect to database gone \(repl@127\.0\.0\.1:1\/nowhere\)/);
    assert.ok(!r4.out.includes('Sup3rS3cret'), show(r4));
    // nothing is claimed about databases that were not read
    if (format === 'text') {
      assert.doesNotMatch(r4.out, /No changes/);
      assert.match(lastLine(r4.stdout), /^No plan: 1 problem \(below\) blocks it/);
    }
  }
  // apply takes --no-color as plan does
  const nc = await cli(['apply', '-f', f4, '--no-color', '--auto-approve'], 1);
  assert.doesNotMatch(nc.out, /unknown option/);
});

test('two topologies share a database without touching each other; makedelta and autokick shape the capture', async () => {
  const [a, b] = await env.fresh('owners', DDL);
  const dir = tempDir();
  const one = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ['public.items'], name: 'one' }), dir, 'one.yaml');
  const two = writeTopology(
    simpleTopology({
      sources: [a],
      targets: [b],
      tables: ['public.items', 'public.tags'],
      name: 'two',
      dbExtra: { a: { makedelta: true } },
      sync: { autokick: false },
    }),
    dir,
    'two.yaml',
  );
  await apply(one);
  await apply(two);
  const trg = await triggers(a, 'public.items');
  assert.equal(
    trg.filter((t) => t.name.startsWith('bucardo_one_')).every((t) => t.enabled === 'O'),
    true,
  );
  assert.equal(
    trg.filter((t) => t.name.startsWith('bucardo_two_')).every((t) => t.enabled === 'A'),
    true,
    'makedelta: ENABLE ALWAYS',
  );
  assert.equal(trg.length, 11);
  const src = await a.one(`SELECT prosrc FROM pg_proc WHERE pronamespace = 'bucardo_two'::regnamespace AND proname LIKE 'capture_%' LIMIT 1`);
  assert.doesNotMatch(src.prosrc, /pg_notify/, 'autokick false: no NOTIFY');
  await cli(['destroy', '-f', two, '--auto-approve'], 0);
  assert.equal((await triggers(a, 'public.items')).filter((t) => t.name.startsWith('bucardo_one_')).length, 5, "topology one's capture is untouched");
  assert.equal((await triggers(a, 'public.items')).length, 6);
  await expectNoChanges(one);
  // turning autokick off in `one` is an in-place update of the function body
  const edited = simpleTopology({ sources: [a], targets: [b], tables: ['public.items'], name: 'one', sync: { autokick: false } });
  writeTopology(edited, dir, 'one.yaml');
  const doc = await planJson(one);
  assert.deepEqual(
    doc.changes.map((c) => [c.action, c.object_type]),
    [
      ['update', 'function'],
      ['update', 'sync'],
      ['update', 'sync'],
    ],
  );
  assert.match(doc.changes[0].reason, /capture options changed/);
  assert.match(doc.changes[0].diff!, /^-\s+PERFORM pg_notify/m);
});

test('a changed replication key replaces the key-change trigger: an UPDATE of a new key column replicates as a key change', async () => {
  const { a, b, file, topo } = await fresh('rekey', ['public.items']);
  await apply(file);
  await cli(['run', '-f', file, '--once'], 0);
  // the key becomes (id, name): an UPDATE of name now moves the row to another key
  (topo.relgroups as { g: { tables: unknown[] } }).g.tables = [{ name: 'public.items', key: ['id', 'name'] }];
  writeTopology(topo, path.dirname(file));
  const p = await cli(['plan', '-f', file, '--no-color'], 0);
  assert.match(
    p.stdout,
    /-\/\+ trigger bucardo_main_[0-9a-f]{12}_k on public\.items\n\s+definition differs: its WHEN condition names \(id\), not the key \(id, name\)/,
    show(p),
  );
  await apply(file);
  await expectNoChanges(file);
  await a.query(`UPDATE public.items SET name = 'uno' WHERE id = 1`);
  await cli(['run', '-f', file, '--once'], 0);
  const rows = async (db: TestDb) => (await db.query<{ r: string }>(`SELECT t::text AS r FROM public.items t ORDER BY id`)).rows.map((x) => x.r);
  assert.deepEqual(await rows(b), await rows(a), 'the old key (1, one) was deleted on b and (1, uno) inserted');
});
