// A database still listed under databases: but in no sync any more: plan, apply and destroy
// read it and remove what the topology installed there (else its capture triggers keep
// filling delta tables forever); when it is unreachable, that is a warning, not a block.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useClusters, writeTopology, type TestDb } from '../helpers/env.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { bucardoObjects } from '../helpers/install.js';

const env = useClusters(['a', 'b']);

const DDL = `
CREATE TABLE public.items (id integer PRIMARY KEY, name text NOT NULL);
CREATE TABLE public.tags (code text PRIMARY KEY, label text);
`;
const GONE = 'postgres://repl:Sup3rS3cret@127.0.0.1:1/nowhere';

const show = (r: CliResult) => `\nexit=${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
const lastLine = (s: string) => s.trim().split('\n').pop()!.trim();

async function cli(args: string[], code: number): Promise<CliResult> {
  const r = await runCli(args);
  assert.equal(r.code, code, `bucardo ${args.join(' ')}: expected exit ${code}${show(r)}`);
  return r;
}

interface PlanDoc {
  changes: { database: string; action: string; object_type: string; object: string; reason: string }[];
  warnings: { code: string; database: string | null; message: string }[];
  errors: { code: string; database: string | null; message: string }[];
}

/** Three databases: a on cluster a, b and c on cluster b. */
async function threeDbs(tag: string): Promise<[TestDb, TestDb, TestDb]> {
  const [a, b] = await env.fresh(tag, DDL);
  const [c] = await env.fresh(`${tag}_c`, DDL, ['b']);
  return [a, b, c];
}

/** Sync s1 of relgroup g; `c` is listed under databases: whether or not s1 uses it. */
function topo(a: TestDb, b: TestDb, cUrl: string, sources: string[], tables = ['public.items']) {
  return {
    version: 1,
    databases: { a: { url: a.url }, b: { url: b.url }, c: { url: cUrl } },
    relgroups: { g: { tables } },
    syncs: { s1: { relgroup: 'g', sources, targets: ['b'] } },
  };
}

test('a database taken out of every sync has its objects destroyed by plan/apply; unreachable, it is a warning', async () => {
  const [a, b, c] = await threeDbs('nosync');
  await cli(['apply', '-f', writeTopology(topo(a, b, c.url, ['a', 'c'])), '--auto-approve'], 0);
  const installed = await bucardoObjects(c);
  assert.ok(installed.some((o) => o.startsWith('trigger ')) && installed.some((o) => o.startsWith('schema ')), installed.join('\n'));

  const file = writeTopology(topo(a, b, c.url, ['a']));
  const r = await cli(['plan', '-f', file, '--format', 'json'], 0);
  const doc = JSON.parse(r.stdout) as PlanDoc;
  const onC = doc.changes.filter((ch) => ch.database === 'c');
  assert.ok(onC.length, show(r));
  assert.ok(
    onC.every((ch) => ch.action === 'destroy'),
    show(r),
  );
  assert.deepEqual([...new Set(onC.map((ch) => ch.object_type))].sort(), ['delta_table', 'function', 'schema', 'sync', 'trigger']);
  for (const ch of onC) assert.match(ch.reason, /database c is in no sync of topology \S+ any more/, show(r));
  assert.deepEqual(doc.errors, []);

  await cli(['apply', '-f', file, '--auto-approve'], 0);
  assert.deepEqual(await bucardoObjects(c), []);
  assert.ok((await bucardoObjects(a)).length, 'a keeps its objects');
  const same = await cli(['plan', '-f', file, '--detailed-exitcode'], 0);
  assert.equal(lastLine(same.stdout), 'No changes.', show(same));

  // c unreachable: named as a warning; the other databases are still planned and applied
  const f2 = writeTopology(topo(a, b, GONE, ['a'], ['public.items', 'public.tags']));
  const text = await cli(['plan', '-f', f2], 0);
  assert.match(text.stdout, /warning: .*database c .*cannot connect to database c/, show(text));
  assert.match(lastLine(text.stdout), /^Plan: \d+ to add, \d+ to change, 0 to destroy\.$/, show(text));
  assert.ok(!text.out.includes('Sup3rS3cret'), show(text));
  const d2 = JSON.parse((await cli(['plan', '-f', f2, '--format', 'json'], 0)).stdout) as PlanDoc;
  assert.deepEqual(
    d2.warnings.map((w) => [w.code, w.database]),
    [['unreachable', 'c']],
  );
  assert.ok(d2.changes.some((ch) => ch.database === 'a' && ch.object.includes('tags')));
  await cli(['apply', '-f', f2, '--auto-approve'], 0);
  const after = await cli(['plan', '-f', f2, '--detailed-exitcode'], 0);
  assert.equal(lastLine(after.stdout), 'No changes.', show(after));

  // a database that a sync uses stays an error when unreachable
  const f3 = writeTopology(topo(a, b, GONE, ['a', 'c']));
  const blocked = await cli(['plan', '-f', f3], 1);
  assert.match(blocked.out, /cannot connect to database c/);
});

test('destroy removes the objects of a database that is in no sync any more', async () => {
  const [a, b, c] = await threeDbs('destroy_nosync');
  await cli(['apply', '-f', writeTopology(topo(a, b, c.url, ['a', 'c'])), '--auto-approve'], 0);
  assert.ok((await bucardoObjects(c)).length);
  const file = writeTopology(topo(a, b, c.url, ['a']));
  await cli(['destroy', '-f', file, '--auto-approve'], 0);
  for (const db of [a, b, c]) assert.deepEqual(await bucardoObjects(db), [], `database ${db.dbname}`);
});

test('a database deleted from the file is named by plan as a warning, with the way to clean it; listed again in no sync, apply cleans it', async () => {
  const [a, b, c] = await threeDbs('deleted');
  await cli(['apply', '-f', writeTopology(topo(a, b, c.url, ['a', 'c'])), '--auto-approve'], 0);
  // c gone from databases: and from the sync: bucardo keeps no connection strings, so the
  // registrations of s1 on a and b are what remember it
  const { c: _c, ...rest } = topo(a, b, c.url, ['a']).databases;
  const file = writeTopology({ ...topo(a, b, c.url, ['a']), databases: rest });
  const r = await cli(['plan', '-f', file, '--format', 'json'], 0);
  const doc = JSON.parse(r.stdout) as PlanDoc;
  assert.deepEqual(
    doc.warnings.map((w) => [w.code, w.database]),
    [['removed_database', 'c']],
    show(r),
  );
  assert.match(doc.warnings[0].message, /database c is not in the file any more, but sync s1 was installed with it/, show(r));
  assert.deepEqual(doc.errors, []);
  const text = await cli(['plan', '-f', file], 0);
  assert.match(text.stdout, /warning: database c is not in the file any more/, show(text));
  assert.match(text.stdout, /list c under databases: \(in no sync\) and run apply/, show(text));

  // listed again in no sync: its objects are planned for destruction and removed
  const back = writeTopology(topo(a, b, c.url, ['a']));
  const again = JSON.parse((await cli(['plan', '-f', back, '--format', 'json'], 0)).stdout) as PlanDoc;
  assert.ok(again.changes.some((ch) => ch.database === 'c' && ch.action === 'destroy'));
  await cli(['apply', '-f', back, '--auto-approve'], 0);
  assert.deepEqual(await bucardoObjects(c), []);
});
