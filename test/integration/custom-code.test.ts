/**
 * SPEC section 6, custom code (docs/custom-code.md): conflict handlers that pick winners
 * or merge rows, and ones that throw, answer nonsense or never answer; before_sync vetoing
 * a run, after_sync getting the summary, on_error repairing a unique clash and the run
 * redone once. Modules are written into the topology's folder by each test; they record
 * what they were given into a JSON-lines file whose path is written into their source.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { useClusters, simpleTopology, writeTopology, tempDir, type TestDb } from '../helpers/env.js';
import { applyOk, runOnce, assertSame } from '../helpers/install.js';
import { runCli } from '../helpers/cli.js';
import { packageRoot } from '../../engine/paths.js';

const env = useClusters(['a', 'b', 'c']);

const ITEMS = `CREATE TABLE public.items (id integer PRIMARY KEY, name text NOT NULL, qty integer);`;
const TABLES = ['public.items'];

/** Module prologue: record(x) appends x as a JSON line to `file`. */
const recorder = (file: string) => `import fs from 'node:fs';
function record(x) { fs.appendFileSync(${JSON.stringify(file)}, JSON.stringify(x) + '\\n'); }
`;

// biome-ignore lint/suspicious/noExplicitAny: the JSON lines a test module recorded, read field by field
function records(file: string): any[] {
  return fs.existsSync(file)
    ? fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    : [];
}

interface Setup {
  a: TestDb;
  b: TestDb;
  c: TestDb;
  file: string;
  calls: string;
}

/** Sources a and b, target c, `tables` from `ddl`; each module at its path (relative to the topology), with the recorder. */
async function setup(
  tag: string,
  modules: Record<string, string>,
  o: { tables?: unknown[]; sync?: Record<string, unknown>; ddl?: string } = {},
): Promise<Setup> {
  const [a, b, c] = await env.fresh(tag, o.ddl ?? ITEMS);
  const dir = tempDir('bucardo-custom-');
  const calls = path.join(dir, 'calls.jsonl');
  for (const [rel, source] of Object.entries(modules)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), recorder(calls) + source);
  }
  const file = writeTopology(simpleTopology({ sources: [a, b], targets: [c], tables: o.tables ?? TABLES, sync: o.sync }), dir);
  await applyOk(file);
  return { a, b, c, file, calls };
}

/** setup() with `conflict: {custom: ./conflicts/resolve.mjs}` on public.items, and rows 1-3 everywhere. */
async function customSetup(tag: string, source: string): Promise<Setup> {
  const s = await setup(tag, { 'conflicts/resolve.mjs': source }, { tables: [{ name: 'public.items', conflict: { custom: './conflicts/resolve.mjs' } }] });
  await s.a.query(`INSERT INTO public.items VALUES (1, 'one', 10), (2, 'two', 20), (3, 'three', 30)`);
  await runOnce(s.file);
  await assertSame([s.a, s.b, s.c], TABLES, 'seeded');
  return s;
}

const item = async (d: TestDb, id: number) => (await d.query('SELECT id, name, qty FROM public.items WHERE id = $1', [id])).rows[0] ?? null;
const items = (dbs: TestDb[], id: number) => Promise.all(dbs.map((d) => item(d, id)));

async function statusOf(file: string) {
  const r = await runCli(['status', '-f', file, '--format', 'json']);
  assert.equal(r.code, 0, r.out);
  return JSON.parse(r.stdout).syncs[0];
}

test('custom handler: the source it picks wins on every database; resolve gets batches of key, current rows and change times', async () => {
  const { a, b, c, file, calls } = await customSetup(
    'cc_pick',
    `
export function resolve(batch) {
  record(batch);
  // the larger qty wins; a deleted row (null) counts as nothing
  return batch.conflicts.map((c) => Object.entries(c.rows).reduce((best, [db, row]) => (row && (!best || Number(row.qty) > best.qty) ? { db, qty: Number(row.qty) } : best), null).db);
}
`,
  );
  await a.query(`UPDATE public.items SET name = 'a1', qty = 15 WHERE id = 1`);
  await b.query(`UPDATE public.items SET name = 'b2', qty = 99 WHERE id = 2`);
  await b.query(`UPDATE public.items SET name = 'b1', qty = 12 WHERE id = 1`); // later: latest would pick b
  await a.query(`UPDATE public.items SET name = 'a2', qty = 3 WHERE id = 2`); // later: latest would pick a
  await a.query(`DELETE FROM public.items WHERE id = 3`);
  await b.query(`UPDATE public.items SET name = 'b3', qty = 33 WHERE id = 3`); // b's row beats a's delete
  await a.query(`INSERT INTO public.items VALUES (4, 'a only', 4)`); // no conflict
  const r = await runOnce(file);
  assert.match(r.stdout, /conflicts=3/);
  assert.match(r.stdout, /conflict sync=s1 table=public\.items key=\{"id":1\} winner=a/);
  await assertSame([a, b, c], TABLES, 'after the custom handler');
  assert.deepEqual(await items([a, b, c], 1), Array(3).fill({ id: 1, name: 'a1', qty: 15 }));
  assert.deepEqual(await items([a, b, c], 2), Array(3).fill({ id: 2, name: 'b2', qty: 99 }));
  assert.deepEqual(await items([a, b, c], 3), Array(3).fill({ id: 3, name: 'b3', qty: 33 }));
  assert.deepEqual(await item(c, 4), { id: 4, name: 'a only', qty: 4 });

  const batches = records(calls);
  assert.equal(batches.length, 1, 'one call for the table: conflicts come in batches');
  const [batch] = batches;
  assert.equal(batch.sync, 's1');
  assert.equal(batch.table, 'public.items');
  assert.deepEqual(
    batch.conflicts.map((x: { key: unknown }) => x.key),
    [{ id: '1' }, { id: '2' }, { id: '3' }],
    'in key order, values as text',
  );
  const [k1, , k3] = batch.conflicts;
  assert.deepEqual(k1.rows, { a: { id: '1', name: 'a1', qty: '15' }, b: { id: '1', name: 'b1', qty: '12' } });
  assert.deepEqual(Object.keys(k1.changed_at), ['a', 'b']);
  for (const at of Object.values(k1.changed_at) as string[]) assert.match(at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  assert.ok(k1.changed_at.b > k1.changed_at.a, 'b changed key 1 last');
  assert.equal(k3.rows.a, null, 'a deleted key 3');
  const cf = await c.query(`SELECT key->>'id' AS id, winner FROM bucardo_main.conflict ORDER BY 1`);
  assert.deepEqual(cf.rows, [
    { id: '1', winner: 'a' },
    { id: '2', winner: 'b' },
    { id: '3', winner: 'b' },
  ]);
  // nothing pending afterwards, nothing ping-pongs
  assert.doesNotMatch((await runOnce(file)).stdout, /INFO {2}run /);
});

test('custom handler: a merged row (the counters added up, the newest name) is written to every database, sources and target', async () => {
  const { a, b, c, file } = await customSetup(
    'cc_merge',
    `
export function resolve(batch) {
  return batch.conflicts.map((c) => {
    if (c.key.id === '3') return 'a'; // a plain winner in the same batch
    const [x, y] = Object.values(c.rows);
    const newest = c.changed_at.a > c.changed_at.b ? c.rows.a : c.rows.b;
    return { row: { ...newest, qty: String(Number(x.qty) + Number(y.qty)) } };
  });
}
`,
  );
  await a.query(`UPDATE public.items SET name = 'a1', qty = qty + 1 WHERE id = 1`);
  await b.query(`UPDATE public.items SET name = 'b1', qty = qty + 5 WHERE id = 1`);
  await b.query(`UPDATE public.items SET name = 'b2', qty = qty + 2 WHERE id = 2`);
  await a.query(`UPDATE public.items SET name = 'a2', qty = qty + 7 WHERE id = 2`);
  await b.query(`UPDATE public.items SET name = 'b3' WHERE id = 3`);
  await a.query(`UPDATE public.items SET name = 'a3' WHERE id = 3`);
  const r = await runOnce(file);
  assert.match(r.stdout, /key=\{"id":1\} winner=\(merged\)/);
  await assertSame([a, b, c], TABLES, 'merged rows everywhere');
  assert.deepEqual(await item(c, 1), { id: 1, name: 'b1', qty: 26 });
  assert.deepEqual(await item(b, 2), { id: 2, name: 'a2', qty: 49 });
  assert.deepEqual(await item(b, 3), { id: 3, name: 'a3', qty: 30 });
  const cf = await a.query(`SELECT key->>'id' AS id, winner, detail->'merged' AS merged FROM bucardo_main.conflict ORDER BY 1`);
  assert.deepEqual(cf.rows, [
    { id: '1', winner: null, merged: true },
    { id: '2', winner: null, merged: true },
    { id: '3', winner: 'a', merged: null },
  ]);
  assert.doesNotMatch((await runOnce(file)).stdout, /INFO {2}run /, 'the merged rows are not captured again');
});

test('custom handler: a merged row does not overwrite a newer local change on a source; the key comes back to the handler next run', async () => {
  const flag = path.join(tempDir('bucardo-flag-'), 'wrote');
  const pgModule = pathToFileURL(path.join(packageRoot(), 'node_modules', 'pg', 'lib', 'index.js')).href;
  const { a, b, c, file, calls } = await customSetup(
    'cc_defer',
    `
import pg from ${JSON.stringify(pgModule)};
const FLAG = ${JSON.stringify(flag)};
export async function resolve(batch) {
  record(batch.conflicts.map((c) => c.rows));
  // the first call writes on b itself: after the run's snapshot, before it applies
  if (!fs.existsSync(FLAG)) {
    fs.writeFileSync(FLAG, '1');
    const c = new pg.Client({ connectionString: fs.readFileSync(FLAG + '.url', 'utf8') });
    await c.connect();
    await c.query("UPDATE public.items SET name = 'late' WHERE id = 1");
    await c.end();
  }
  return batch.conflicts.map((c) => {
    const rows = Object.values(c.rows);
    return { row: { ...rows[0], name: rows.map((r) => r.name).sort().join('+'), qty: String(Math.max(...rows.map((r) => Number(r.qty)))) } };
  });
}
`,
  );
  fs.writeFileSync(`${flag}.url`, b.url);
  await a.query(`UPDATE public.items SET name = 'a1', qty = 11 WHERE id = 1`);
  await b.query(`UPDATE public.items SET name = 'b1', qty = 12 WHERE id = 1`);
  const first = await runOnce(file);
  assert.match(first.stdout, /deferred=public\.items=1/);
  assert.deepEqual(
    (await items([a, b, c], 1)).map((x) => x.name),
    ['a1+b1', 'late', 'a1+b1'],
    'b keeps its newer change',
  );
  await runOnce(file);
  await assertSame([a, b, c], TABLES, 'settled by the handler in the next run');
  assert.deepEqual(await item(c, 1), { id: 1, name: 'a1+b1+late', qty: 12 });
  assert.deepEqual(records(calls).at(-1), [{ a: { id: '1', name: 'a1+b1', qty: '12' }, b: { id: '1', name: 'late', qty: '12' } }]);
});

test('custom handler that throws: the run fails naming module, table and first key; nothing changes and the changes stay pending', async () => {
  const { a, b, c, file } = await customSetup(
    'cc_throw',
    `
export function resolve(batch) { throw new Error('no idea how to merge these'); }
`,
  );
  await a.query(`UPDATE public.items SET name = 'a1' WHERE id = 1`);
  await b.query(`UPDATE public.items SET name = 'b1' WHERE id = 1`);
  await a.query(`UPDATE public.items SET name = 'a2' WHERE id = 2`); // no conflict, but the run fails as a whole
  const r = await runOnce(file, [], 1);
  assert.match(
    r.stdout,
    /conflict handler \.\/conflicts\/resolve\.mjs threw on table public\.items \(first key \{"id":"1"\}\): no idea how to merge these; nothing was written/,
  );
  assert.deepEqual(
    (await items([a, b, c], 1)).map((x) => x.name),
    ['a1', 'b1', 'one'],
  );
  assert.deepEqual(
    (await items([a, b, c], 2)).map((x) => x.name),
    ['a2', 'two', 'two'],
  );
  const st = await statusOf(file);
  assert.equal(st.state, 'failed');
  assert.match(st.last_run.error, /resolve\.mjs.*public\.items.*\{"id":"1"\}/);
  assert.equal(st.pending, 3, 'nothing consumed');
  // with a strategy that works, the same pending changes go through
  await applyOk(writeTopology(simpleTopology({ sources: [a, b], targets: [c], tables: TABLES }), path.dirname(file)));
  await runOnce(file);
  await assertSame([a, b, c], TABLES);
  assert.deepEqual(
    (await items([a, b, c], 2)).map((x) => x.name),
    ['a2', 'a2', 'a2'],
  );
});

test('custom handler answering nonsense fails the run clearly, whatever the nonsense', async () => {
  // the answer depends on the rows, so one module shows several kinds of nonsense
  const { a, b, c, file } = await customSetup(
    'cc_garbage',
    `
export function resolve(batch) {
  const kind = batch.conflicts[0].rows.a.name;
  if (kind === 'not-an-array') return { winners: ['a'] };
  if (kind === 'too-few') return [];
  if (kind === 'unknown-db') return batch.conflicts.map(() => 'c');
  if (kind === 'moved-key') return batch.conflicts.map((c) => ({ row: { ...c.rows.a, id: '99' } }));
  return batch.conflicts.map((c) => ({ row: { id: c.key.id, name: 'x' } }));
}
`,
  );
  const cases: [string, RegExp][] = [
    ['not-an-array', /\): \{"winners":\["a"\]\} instead of an array of 1 results; nothing was written/],
    ['too-few', /\): 0 results for 1 conflicts; nothing/],
    ['unknown-db', /result 0 \(key \{"id":"1"\}\) is "c", not a database that changed the key \(a, b\)/],
    ['moved-key', /the merged row's id is "99", not the key's "1"/],
    ['no-qty', /the merged row lacks column "qty"/],
  ];
  for (const [kind, re] of cases) {
    await a.query(`UPDATE public.items SET name = $1 WHERE id = 1`, [kind]);
    await b.query(`UPDATE public.items SET name = 'b' WHERE id = 1`);
    const r = await runOnce(file, [], 1);
    assert.match(r.stdout, re, kind);
    assert.match(r.stdout, /conflict handler \.\/conflicts\/resolve\.mjs returned an invalid result on table public\.items \(first key \{"id":"1"\}\): /, kind);
  }
  assert.deepEqual(
    (await items([a, b, c], 1)).map((x) => x.name),
    ['no-qty', 'b', 'one'],
    'nothing was written',
  );
});

test('custom handler that never answers fails the run after the time limit (BUCARDO_HOOK_TIMEOUT_MS, for tests only)', async () => {
  const { a, b, c, file } = await customSetup(
    'cc_hang',
    `
export function resolve() { return new Promise(() => {}); }
`,
  );
  await a.query(`UPDATE public.items SET name = 'a1' WHERE id = 1`);
  await b.query(`UPDATE public.items SET name = 'b1' WHERE id = 1`);
  const t0 = Date.now();
  const r = await runCli(['run', '-f', file, '--once'], { env: { BUCARDO_HOOK_TIMEOUT_MS: '1500' } });
  assert.equal(r.code, 1, r.out);
  assert.match(r.stdout, /conflict handler \.\/conflicts\/resolve\.mjs did not return within 1\.5 s on table public\.items \(first key \{"id":"1"\}\)/);
  assert.ok(Date.now() - t0 < 25_000, 'the run did not wait for the handler');
  assert.deepEqual(
    (await items([a, b, c], 1)).map((x) => x.name),
    ['a1', 'b1', 'one'],
  );
});

const HOOK_DDL = `${ITEMS}
CREATE TABLE public.flags (name text PRIMARY KEY, value text);
CREATE TABLE public.hook_calls (id serial PRIMARY KEY, what text);`;

test('before_sync vetoes a run (nothing consumed, status shows why, run --once exits 0); after_sync gets the summary', async () => {
  const { a, b, c, file, calls } = await setup(
    'hk_veto',
    {
      'hooks/check.mjs': `
export async function before_sync(ctx) {
  record({ hook: 'before_sync', sync: ctx.sync, run_id: ctx.run_id });
  await ctx.query('a', 'INSERT INTO public.hook_calls (what) VALUES ($1)', ['before ' + ctx.run_id]);
  const r = await ctx.query('a', "SELECT value FROM public.flags WHERE name = 'veto'");
  ctx.log('veto flag: ' + (r.rows[0]?.value ?? 'none'));
  if (r.rows.length) return { skip: r.rows[0].value };
}
`,
      'hooks/report.mjs': `
export function after_sync(ctx) {
  record({ hook: 'after_sync', run_id: ctx.run_id, summary: ctx.summary });
}
`,
    },
    { ddl: HOOK_DDL, sync: { hooks: { before_sync: './hooks/check.mjs', after_sync: './hooks/report.mjs' } } },
  );
  await a.query(`INSERT INTO public.flags VALUES ('veto', 'maintenance window until 10:00')`);
  await a.query(`INSERT INTO public.items VALUES (1, 'one', 1), (2, 'two', 2), (3, 'three', 3)`);

  const skipped = await runOnce(file);
  assert.match(skipped.stdout, /INFO {2}skipped sync=s1 run_id=\S+: before_sync: maintenance window until 10:00 \(nothing consumed\)/);
  assert.match(skipped.stdout, /INFO {2}hook sync=s1 hook=before_sync: veto flag: maintenance window until 10:00/);
  assert.equal((await b.one('SELECT count(*)::int AS n FROM public.items')).n, 0);
  assert.equal((await c.one('SELECT count(*)::int AS n FROM public.items')).n, 0);
  assert.equal((await a.one('SELECT count(*)::int AS n FROM public.hook_calls')).n, 0, "ctx.query ran in the run's transaction, rolled back with it");
  const st = await statusOf(file);
  assert.equal(st.state, 'idle', 'a skip is no failure');
  assert.equal(st.last_run.error, null);
  assert.equal(st.last_run.skipped, 'maintenance window until 10:00');
  assert.equal(st.pending, 3, 'nothing consumed');
  const text = await runCli(['status', '-f', file]);
  assert.match(text.stdout, /^sync s1: last run skipped by before_sync: maintenance window until 10:00$/m);
  assert.deepEqual(
    records(calls).map((x) => x.hook),
    ['before_sync'],
    'no after_sync for a skipped run',
  );

  await a.query(`DELETE FROM public.flags`);
  await runOnce(file);
  await assertSame([a, b, c], TABLES, 'the next run replicates');
  assert.equal((await a.one('SELECT count(*)::int AS n FROM public.hook_calls')).n, 1, "the hook's write committed with the run");
  const after = records(calls).filter((x) => x.hook === 'after_sync');
  assert.equal(after.length, 1);
  const s = after[0].summary;
  assert.equal(s.rows, 3);
  assert.deepEqual(s.tables['public.items'], { rows: 3, sent: { a: 3 }, received: { b: 3, c: 3 } });
  assert.equal(s.conflicts, 0);
  const st2 = await statusOf(file);
  assert.equal(st2.last_run.skipped, undefined);
  assert.equal(st2.last_run.rows, 3);

  await a.query(`UPDATE public.items SET name = 'a1' WHERE id = 1`);
  await b.query(`UPDATE public.items SET name = 'b1' WHERE id = 1`);
  await runOnce(file);
  const last = records(calls)
    .filter((x) => x.hook === 'after_sync')
    .at(-1).summary;
  assert.equal(last.conflicts, 1);
  assert.deepEqual(
    last.conflict_records.map((x: { key: unknown; winner: string }) => [x.key, x.winner]),
    [[{ id: 1 }, 'b']],
  );
  assert.deepEqual(last.tables['public.items'].received, { a: 1, c: 1 });
});

test('hooks that throw: before_sync fails the run (naming the hook and module), after_sync is only logged (the run committed)', async () => {
  const { a, b, c, file } = await setup(
    'hk_throw',
    {
      'hooks/strict.mjs': `
export async function before_sync(ctx) {
  const r = await ctx.query('a', "SELECT count(*)::int AS n FROM public.flags");
  if (r.rows[0].n > 0) throw new Error('flags are set');
}
export function after_sync() { throw new Error('the report service is down'); }
`,
    },
    { ddl: HOOK_DDL, sync: { hooks: { before_sync: './hooks/strict.mjs', after_sync: './hooks/strict.mjs' } } },
  );
  await a.query(`INSERT INTO public.items VALUES (1, 'one', 1)`);
  const ok = await runOnce(file);
  assert.match(
    ok.stdout,
    /WARN {2}hook sync=s1 hook=after_sync: sync s1: hook after_sync \(\.\/hooks\/strict\.mjs\) threw: the report service is down \(the run itself committed\)/,
  );
  await assertSame([a, b, c], TABLES);
  await a.query(`INSERT INTO public.flags VALUES ('x', 'y')`);
  await a.query(`INSERT INTO public.items VALUES (2, 'two', 2)`);
  const failed = await runOnce(file, [], 1);
  assert.match(failed.stdout, /sync s1: hook before_sync \(\.\/hooks\/strict\.mjs\) threw: flags are set/);
  assert.equal(await item(b, 2), null);
  assert.equal((await statusOf(file)).state, 'failed');
});

const USERS = `CREATE TABLE public.users (id integer PRIMARY KEY, email text NOT NULL UNIQUE, name text);`;

test('on_error repairs a unique clash through ctx.query and the run is redone once, successfully', async () => {
  const { a, b, c, file, calls } = await setup(
    'hk_repair',
    {
      'hooks/repair.mjs': `
export async function on_error(ctx) {
  record({ error: ctx.error, run_id: ctx.run_id });
  if (ctx.error.code !== 'constraint_violation') return;
  // users registered on b (ids from 100) lose a clashing address: renamed there, which
  // the redone run replicates
  const r = await ctx.query('b', "UPDATE public.users SET email = 'dup-' || id || '-' || email WHERE id >= 100 AND email IN ('x@example.com')");
  ctx.log('renamed ' + r.rowCount + ' duplicate address(es) on b');
  return { retry: true };
}
`,
    },
    { ddl: USERS, tables: ['public.users'], sync: { hooks: { on_error: './hooks/repair.mjs' } } },
  );
  await a.query(`INSERT INTO public.users VALUES (1, 'x@example.com', 'Ann'), (2, 'y@example.com', 'Bob')`);
  await b.query(`INSERT INTO public.users VALUES (100, 'x@example.com', 'Cy'), (101, 'z@example.com', 'Di')`);
  const r = await runOnce(file);
  assert.match(r.stdout, /hook sync=s1 hook=on_error: renamed 1 duplicate address\(es\) on b/);
  assert.match(r.stdout, /hook sync=s1 hook=on_error: redoing run \S+ once, as on_error asked/);
  await assertSame([a, b, c], ['public.users'], 'after the repair');
  const emails = (await c.query(`SELECT id, email FROM public.users ORDER BY id`)).rows;
  assert.deepEqual(emails, [
    { id: 1, email: 'x@example.com' },
    { id: 2, email: 'y@example.com' },
    { id: 100, email: 'dup-100-x@example.com' },
    { id: 101, email: 'z@example.com' },
  ]);
  const seen = records(calls);
  assert.equal(seen.length, 1);
  assert.equal(seen[0].error.code, 'constraint_violation');
  assert.equal(seen[0].error.table, 'public.users');
  assert.ok(['a', 'b', 'c'].includes(seen[0].error.database), JSON.stringify(seen[0].error)); // wherever the apply failed first
  assert.ok(seen[0].error.keys.length > 0 && /unique constraint/.test(seen[0].error.message), JSON.stringify(seen[0].error));
  assert.equal((await statusOf(file)).state, 'idle');
});

test('on_error: a redone run that fails again is not redone a second time; the run fails', async () => {
  const { a, b, c, file, calls } = await setup(
    'hk_noretry',
    {
      'hooks/repair.mjs': `
export async function on_error(ctx) {
  record({ code: ctx.error.code, run_id: ctx.run_id });
  await ctx.query('a', "SELECT 1");
  return { retry: true }; // but repairs nothing
}
`,
    },
    { ddl: USERS, tables: ['public.users'], sync: { hooks: { on_error: './hooks/repair.mjs' } } },
  );
  await a.query(`INSERT INTO public.users VALUES (1, 'x@example.com', 'Ann')`);
  await b.query(`INSERT INTO public.users VALUES (100, 'x@example.com', 'Cy')`);
  const r = await runOnce(file, [], 1);
  assert.match(r.stdout, /would violate unique constraint/);
  const seen = records(calls);
  assert.equal(seen.length, 1, `on_error is called once per run: ${JSON.stringify(seen)}`);
  assert.equal((r.stdout.match(/redoing run/g) ?? []).length, 1);
  assert.equal((await c.one('SELECT count(*)::int AS n FROM public.users')).n, 0, 'nothing was written');
  const st = await statusOf(file);
  assert.equal(st.state, 'failed');
  assert.equal(st.pending, 2);
});

test('examples/conflicts/counters.yaml: per-source counters merged column-wise by counter-merge.js', async () => {
  const [east, west] = await env.fresh(
    'ex_counters',
    `CREATE TABLE public.page_hits (page text PRIMARY KEY, title text,
    hits_east bigint NOT NULL DEFAULT 0, hits_west bigint NOT NULL DEFAULT 0);`,
    ['a', 'b'],
  );
  const file = path.join(packageRoot(), 'examples', 'conflicts', 'counters.yaml');
  const cliEnv = { EAST_URL: east.url, WEST_URL: west.url };
  const cli = async (args: string[], code = 0) => {
    const r = await runCli(args, { env: cliEnv, cwd: tempDir() });
    assert.equal(r.code, code, r.out);
    return r;
  };
  await cli(['apply', '-f', file, '--auto-approve']);
  await east.query(`INSERT INTO public.page_hits (page, title) VALUES ('/home', 'Home'), ('/about', 'About')`);
  await cli(['run', '-f', file, '--once']);
  for (let i = 0; i < 2; i++) await east.query(`UPDATE public.page_hits SET hits_east = hits_east + 1 WHERE page = '/home'`);
  for (let i = 0; i < 3; i++) await west.query(`UPDATE public.page_hits SET hits_west = hits_west + 1 WHERE page = '/home'`);
  await east.query(`UPDATE public.page_hits SET title = 'Welcome' WHERE page = '/home'`);
  await west.query(`DELETE FROM public.page_hits WHERE page = '/about'`);
  await east.query(`UPDATE public.page_hits SET hits_east = hits_east + 1 WHERE page = '/about'`); // newer than the delete
  const r = await cli(['run', '-f', file, '--once']);
  assert.match(r.stdout, /key=\{"page":"\/home"\} winner=\(merged\)/);
  assert.match(r.stdout, /key=\{"page":"\/about"\} winner=east/);
  for (const d of [east, west]) {
    const rows = (await d.query(`SELECT page, title, hits_east::int, hits_west::int FROM public.page_hits ORDER BY page`)).rows;
    assert.deepEqual(
      rows,
      [
        { page: '/about', title: 'About', hits_east: 1, hits_west: 0 },
        { page: '/home', title: 'Welcome', hits_east: 2, hits_west: 3 },
      ],
      d.name,
    );
  }
});
