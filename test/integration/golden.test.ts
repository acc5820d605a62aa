// Golden files: `plan` (text, JSON, Markdown), `apply`, `destroy` and what apply leaves in
// the databases, byte for byte, over a topology and an edit of it that between them yield
// every kind of change. Refactorings of the planner and the SQL layer must leave every
// file unchanged; a deliberate change of output regenerates them with UPDATE_GOLDEN=1 (and
// the diff is reviewed like code). Only what varies between runs is normalized: ports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { useClusters, writeTopology, tempDir, type TestDb } from '../helpers/env.js';
import { runCli } from '../helpers/cli.js';

const env = useClusters(['a', 'b']);

/** test/golden in the source tree, from dist/test/integration/. */
const GOLDEN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/golden');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

const DDL = `
CREATE TABLE public.items (id integer PRIMARY KEY, name text NOT NULL, qty integer);
CREATE TABLE public.tags (code text PRIMARY KEY, label text);
CREATE TABLE public.notes (id bigint PRIMARY KEY, body text);
CREATE SCHEMA "Sales EU";
CREATE TABLE "Sales EU"."Order ""Lines""" ("order" int, "line no" int, v text, PRIMARY KEY ("order", "line no"));
CREATE TABLE public.payments (id int, paid date, amount numeric, PRIMARY KEY (id, paid)) PARTITION BY RANGE (paid);
CREATE TABLE public.payments_2024 PARTITION OF public.payments FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE public.payments_2025 PARTITION OF public.payments FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE SEQUENCE public.invoice_no;
`;

function topology(dbs: Record<string, TestDb>, edited: boolean) {
  const databases = Object.fromEntries(Object.entries(dbs).map(([k, d]) => [k, { url: d.url }]));
  const shop = edited
    ? [
        { schema: 'public', table: 'items', key: ['id', 'name'] },
        { schema: 'public', table: 'tags', makedelta: true },
        '"Sales EU"."Order ""Lines"""',
        'public.payments',
      ]
    : ['public.items', 'public.tags', 'public.notes', '"Sales EU"."Order ""Lines"""', 'public.payments'];
  const syncs: Record<string, unknown> = {
    s1: { relgroup: 'shop', sources: edited ? ['a', 'b'] : ['a'], ...(edited ? {} : { targets: ['b'] }) },
    s3: { kind: 'fullcopy', relgroup: 'small', sources: ['a'], targets: ['b'] },
  };
  if (!edited) syncs.s2 = { relgroup: 'small', sources: ['a', 'c'], onetimecopy: 'always' };
  return { version: 1, databases, relgroups: { shop: { tables: shop, sequences: ['public.invoice_no'] }, small: { tables: ['public.tags'] } }, syncs };
}

/** The ports of the clusters are the only thing in the output that changes between runs. */
function normalize(text: string, dbs: TestDb[]): string {
  let out = text;
  for (const d of dbs) out = out.replaceAll(`:${d.cluster.port}/`, ':PORT/');
  return out;
}

function checkGolden(name: string, actual: string): void {
  const file = path.join(GOLDEN, name);
  if (UPDATE) {
    fs.mkdirSync(GOLDEN, { recursive: true });
    fs.writeFileSync(file, actual);
    return;
  }
  assert.ok(fs.existsSync(file), `missing golden file test/golden/${name} (make it with UPDATE_GOLDEN=1)`);
  assert.equal(
    actual,
    fs.readFileSync(file, 'utf8'),
    `output differs from test/golden/${name} (if the change is deliberate: UPDATE_GOLDEN=1, then review the diff)`,
  );
}

/** Runs the CLI in `dir` (so paths print as relative), pins exit code, stdout and stderr. */
async function golden(name: string, dir: string, args: string[], dbs: TestDb[]): Promise<string> {
  const r = await runCli(args, { cwd: dir });
  checkGolden(name, normalize(`$ bucardo ${args.join(' ')}\n[exit ${r.code}]\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`, dbs));
  return r.stdout;
}

/** What bucardo left in a database: its objects' definitions and metadata rows, sorted. */
async function state(db: TestDb): Promise<string> {
  const lines: string[] = [];
  const q = async (sql: string) => (await db.query<{ x: string }>(sql)).rows.map((r) => r.x);
  lines.push(
    ...(await q(`SELECT format('schema %s: %s', nspname, obj_description(oid, 'pg_namespace')) AS x FROM pg_namespace WHERE nspname LIKE 'bucardo%'`)),
  );
  lines.push(
    ...(await q(`
    SELECT format('%s %s.%s (%s) %s', c.relkind, n.nspname, c.relname,
      (SELECT string_agg(format('%I %s%s%s', a.attname, format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
         coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')), ', ' ORDER BY a.attnum)
       FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
       WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind <> 'S'),
      coalesce(obj_description(c.oid, 'pg_class'), '')) AS x
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname LIKE 'bucardo%' AND c.relkind IN ('r', 'p', 'S')`)),
  );
  lines.push(
    ...(await q(
      `SELECT 'index ' || pg_get_indexdef(i.indexrelid) AS x FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname LIKE 'bucardo%'`,
    )),
  );
  lines.push(
    ...(await q(
      `SELECT format('constraint %s on %s: %s', conname, conrelid::regclass, pg_get_constraintdef(oid)) AS x FROM pg_constraint WHERE connamespace::regnamespace::text LIKE 'bucardo%'`,
    )),
  );
  lines.push(
    ...(await q(
      `SELECT format('sequence %s: %s %s cycle=%s', seqrelid::regclass, seqtypid::regtype, seqincrement, seqcycle) AS x FROM pg_sequence WHERE seqrelid::regclass::text LIKE 'bucardo%'`,
    )),
  );
  lines.push(
    ...(await q(
      `SELECT format('function %s.%s(): %s %s md5=%s', n.nspname, p.proname, l.lanname, p.prorettype::regtype, md5(p.prosrc)) AS x FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang WHERE n.nspname LIKE 'bucardo%'`,
    )),
  );
  lines.push(
    ...(await q(`SELECT format('trigger [%s] %s', tgenabled, pg_get_triggerdef(oid)) AS x FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE 'bucardo%'`)),
  );
  const schemas = await q(`SELECT nspname AS x FROM pg_namespace WHERE nspname LIKE 'bucardo%'`);
  for (const s of schemas) {
    const t = (name: string) => `"${s}".${name}`;
    lines.push(...(await q(`SELECT format('meta %s = %s', key, CASE WHEN key = 'last_apply' THEN '(time, file)' ELSE value END) AS x FROM ${t('meta')}`)));
    lines.push(
      ...(await q(
        `SELECT format('installed %s %s (%s.%s) %s %s', object_type, object_name, table_schema, table_name, fingerprint, detail) AS x FROM ${t('installed')}`,
      )),
    );
    lines.push(...(await q(`SELECT format('sync %s %s %s %s %s', name, kind, role, fingerprint, detail) AS x FROM ${t('sync')}`)));
    lines.push(
      ...(await q(
        `SELECT format('sync_relation %s %s %s.%s %s copy_pending=%s', sync, table_id, table_schema, table_name, key_columns, copy_pending) AS x FROM ${t('sync_relation')}`,
      )),
    );
  }
  return `${lines.sort().join('\n')}\n`;
}

async function checkState(name: string, dbs: Record<string, TestDb>): Promise<void> {
  let out = '';
  for (const [k, d] of Object.entries(dbs)) out += `=== database ${k}\n${await state(d)}`;
  checkGolden(name, out);
}

test('plan, apply, an edit with drift, apply of a plan file, destroy: output and installed state as pinned', async () => {
  const [a, b] = await env.fresh('golden', DDL);
  const [c] = await env.fresh('golden_c', DDL, ['b']);
  const dbs = { a, b, c };
  const all = [a, b, c];
  await a.query(`INSERT INTO public.items VALUES (1, 'one', 1), (2, 'two', 2), (3, 'three', 3); INSERT INTO public.tags VALUES ('x', 'X'), ('y', 'Y')`);
  // row estimates show in onetimecopy notes: exact once analysed
  for (const d of all) await d.query('ANALYZE');
  const dir = tempDir();
  writeTopology(topology(dbs, false), dir);
  const f = ['-f', 'bucardo.yaml'];

  await golden('1-plan.txt', dir, ['plan', ...f, '--no-color'], all);
  await golden('1-plan-json.txt', dir, ['plan', ...f, '--format', 'json'], all);
  await golden('1-plan-markdown.txt', dir, ['plan', ...f, '--format', 'markdown'], all);
  await golden('1-apply.txt', dir, ['apply', ...f, '--auto-approve'], all);
  await checkState('1-state.txt', dbs);
  await golden('1-replan.txt', dir, ['plan', ...f, '--no-color'], all);

  // drift made by hand, then the edited topology
  const id = async (db: TestDb, table: string) =>
    (await db.one(
      `SELECT p.proname AS fn, t.tgname AS trg FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid WHERE t.tgrelid = $1::regclass AND t.tgname LIKE '%\\_i'`,
      [table],
    )) as { fn: string; trg: string };
  const lines = await id(a, '"Sales EU"."Order ""Lines"""');
  const tags = await id(a, 'public.tags');
  const items = (await id(a, 'public.items')).trg.replace(/_i$/, '_u');
  await a.query(`DROP FUNCTION bucardo_main."${lines.fn}"() CASCADE; CREATE FUNCTION bucardo_main."${lines.fn}"() RETURNS integer LANGUAGE sql AS 'SELECT 1'`);
  await a.query(
    `DROP TRIGGER "${tags.trg}" ON public.tags; CREATE TRIGGER "${tags.trg}" AFTER INSERT ON public.tags FOR EACH ROW EXECUTE FUNCTION bucardo_main."${tags.fn}"()`,
  );
  await a.query(`ALTER TABLE public.items DISABLE TRIGGER "${items}"`);
  await b.query(`DROP TABLE bucardo_main.conflict; DROP SEQUENCE bucardo_main.kick_seq`);
  writeTopology(topology(dbs, true), dir);

  await golden('2-plan.txt', dir, ['plan', ...f, '--no-color'], all);
  await golden('2-plan-json.txt', dir, ['plan', ...f, '--format', 'json'], all);
  await golden('2-plan-markdown.txt', dir, ['plan', ...f, '--format', 'markdown'], all);
  await golden('2-plan-out.txt', dir, ['plan', ...f, '--no-color', '-o', 'plan.json'], all);
  await golden('2-apply-planfile.txt', dir, ['apply', ...f, 'plan.json'], all);
  await checkState('2-state.txt', dbs);
  await golden('2-replan.txt', dir, ['plan', ...f, '--no-color'], all);

  await golden('3-destroy.txt', dir, ['destroy', ...f, '--auto-approve'], all);
  await checkState('3-state.txt', dbs);
});

test('problems that block apply: text and JSON as pinned', async () => {
  const [a, b] = await env.fresh('golden_err', DDL);
  await a.query(`CREATE TABLE public.keyless (v text)`);
  await b.query(`CREATE TABLE public.keyless (v text); ALTER TABLE public.tags ADD COLUMN extra int`);
  for (const d of [a, b]) await d.query('ANALYZE');
  const dir = tempDir();
  writeTopology(
    {
      version: 1,
      databases: { a: { url: a.url }, b: { url: b.url } },
      relgroups: { g: { tables: ['public.items', 'public.tags', 'public.keyless', 'public.nowhere', { match: 'public.nothing_*' }] } },
      syncs: { s1: { relgroup: 'g', sources: ['a'], targets: ['b'] } },
    },
    dir,
  );
  await golden('4-errors.txt', dir, ['plan', '-f', 'bucardo.yaml', '--no-color'], [a, b]);
  await golden('4-errors-json.txt', dir, ['plan', '-f', 'bucardo.yaml', '--format', 'json'], [a, b]);
  await golden('4-errors-markdown.txt', dir, ['plan', '-f', 'bucardo.yaml', '--format', 'markdown'], [a, b]);
});
