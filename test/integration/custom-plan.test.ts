// Section 6 of SPEC in plan and apply: a module's content is part of the plan (an edited
// hook is a change, and a plan file made before the edit is refused), validate checks the
// export, and a changed filter or column list for a target makes the next run re-copy the
// table there (planner/custom.ts, sync_recopy).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { useClusters, writeTopology, simpleTopology, tempDir } from '../helpers/env.js';
import { runCli, type CliResult } from '../helpers/cli.js';

const env = useClusters(['a', 'b']);

const DDL = `CREATE TABLE public.items (id integer PRIMARY KEY, name text NOT NULL, qty integer NOT NULL);`;
const show = (r: CliResult) => `\nexit=${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

async function cli(args: string[], code: number, opts: Parameters<typeof runCli>[1] = {}): Promise<CliResult> {
  const r = await runCli(args, opts);
  assert.equal(r.code, code, `bucardo ${args.join(' ')}${show(r)}`);
  assert.ok(!/^\s{4}at /m.test(r.out), `no stack trace expected${show(r)}`);
  return r;
}

function writeModule(dir: string, rel: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
  fs.writeFileSync(path.join(dir, rel), text);
}

test('a hook module edited after apply is a plan change naming it; a plan file made before the edit is refused', async () => {
  const [a, b] = await env.fresh('hookplan', DDL);
  const dir = tempDir();
  writeModule(dir, 'hooks/after.mjs', 'export function after_sync(ctx) { return undefined; }\n');
  const file = writeTopology(
    simpleTopology({ sources: [a], targets: [b], tables: ['public.items'], sync: { hooks: { after_sync: './hooks/after.mjs' } } }),
    dir,
  );
  // the CLI runs elsewhere: module paths are relative to the topology file
  const cwd = tempDir();
  await cli(['apply', '-f', file, '--auto-approve'], 0, { cwd });
  const same = await cli(['plan', '-f', file, '--detailed-exitcode'], 0, { cwd });
  assert.match(same.stdout, /No changes\./);

  writeModule(dir, 'hooks/after.mjs', 'export function after_sync(ctx) { ctx.log("edited"); }\n');
  const r = await cli(['plan', '-f', file, '--no-color'], 0, { cwd });
  assert.match(r.stdout, /~ sync s1/, show(r));
  assert.match(r.stdout, /module \.\/hooks\/after\.mjs \(hook after_sync\) changed: sha256 [0-9a-f]{12} -> [0-9a-f]{12}/, show(r));

  const pf = path.join(dir, 'plan.json');
  await cli(['plan', '-f', file, '-o', pf], 0, { cwd });
  writeModule(dir, 'hooks/after.mjs', 'export function after_sync(ctx) { ctx.log("edited twice"); }\n');
  const before = (await b.one<{ d: string }>(`SELECT detail::text AS d FROM bucardo_main.sync WHERE name = 's1'`)).d;
  const stale = await cli(['apply', '-f', file, pf], 1, { cwd });
  assert.match(stale.stderr, /made before module \.\/hooks\/after\.mjs changed; nothing was changed/, show(stale));
  assert.equal((await b.one<{ d: string }>(`SELECT detail::text AS d FROM bucardo_main.sync WHERE name = 's1'`)).d, before, 'a refused plan changes nothing');
  await cli(['apply', '-f', file, '--auto-approve'], 0, { cwd });
  assert.match((await cli(['plan', '-f', file], 0, { cwd })).stdout, /No changes\./);
});

test('validate: a module that does not export its function is an error naming the module and the function', async () => {
  const dir = tempDir();
  writeModule(dir, 'conflicts/r.mjs', 'export function resolver(batch) { return []; }\n');
  writeModule(dir, 'hooks/broken.mjs', 'export function before_sync( {\n');
  const text = `version: 1
databases:
  a: {url: postgres://u@a.invalid/x}
  b: {url: postgres://u@b.invalid/x}
relgroups:
  g: {tables: [public.items]}
syncs:
  s:
    relgroup: g
    sources: [a, b]
    conflict: {custom: ./conflicts/r.mjs}
    hooks:
      before_sync: ./hooks/broken.mjs
`;
  const file = writeTopology(text, dir);
  const r = await cli(['validate', '-f', file], 1);
  assert.match(r.out, /bucardo\.yaml:11:\d+: module \.\/conflicts\/r\.mjs does not export a function resolve/, show(r));
  assert.match(r.out, /bucardo\.yaml:13:\d+: module \.\/hooks\/broken\.mjs cannot be imported/, show(r));
});

test('validate: overrides are for targets of the syncs using the relgroup', async () => {
  const text = `version: 1
databases:
  a: {url: postgres://u@a.invalid/x}
  b: {url: postgres://u@b.invalid/x}
  c: {url: postgres://u@c.invalid/x}
relgroups:
  g:
    tables:
      - name: public.items
        targets:
          a: {where: "qty > 0"}
          c: {columns: [id, qty]}
          wh: {where: "qty > 0"}
syncs:
  s: {relgroup: g, sources: [a], targets: [b]}
`;
  const r = await cli(['validate', '-f', writeTopology(text)], 1);
  assert.match(r.out, /:11:\d+: .*overrides for database "a", a source of sync "s": overrides apply to targets only/, show(r));
  assert.match(r.out, /:12:\d+: .*overrides for database "c", which no sync of the relgroup targets/, show(r));
  assert.match(r.out, /:13:\d+: .*overrides for database "wh", which is not defined under databases:/, show(r));
});

test('a changed filter for a target: plan says the next run re-copies the table there, and it does', async () => {
  const [a, b] = await env.fresh('recopy', DDL);
  await a.query(`INSERT INTO public.items SELECT g, 'n' || g, g FROM generate_series(1, 50) g`);
  const dir = tempDir();
  const topo = simpleTopology({ sources: [a], targets: [b], tables: ['public.items'] });
  const file = writeTopology(topo, dir);
  await cli(['apply', '-f', file, '--auto-approve'], 0);
  await cli(['run', '-f', file, '--once'], 0);
  assert.equal((await b.one<{ n: number }>(`SELECT count(*)::int AS n FROM public.items`)).n, 50);
  // rows on the target that the old settings left there by hand: a re-copy replaces them
  await b.query(`DELETE FROM public.items WHERE id <= 5`);
  await b.query(`UPDATE public.items SET name = 'drift' WHERE id = 10`);

  (topo.relgroups as { g: { tables: unknown[] } }).g.tables = [{ name: 'public.items', targets: { [b.name]: { where: 'qty > 0' } } }];
  writeTopology(topo, dir);
  const r = await cli(['plan', '-f', file, '--no-color'], 0);
  assert.match(
    r.stdout,
    new RegExp(
      `database ${b.name}[^\\n]*\\n(?:.*\\n)*?\\s+~ sync s1: table public\\.items\\n\\s+filter changed to qty > 0: the next run empties public\\.items here and copies the rows again from ${a.name}`,
    ),
    show(r),
  );
  const json = JSON.parse((await cli(['plan', '-f', file, '--format', 'json'], 0)).stdout) as { changes: { database: string; object_type: string }[] };
  assert.ok(!json.changes.some((c) => c.database === a.name && c.object_type === 'sync_table'), 'the source is not re-copied');
  await cli(['apply', '-f', file, '--auto-approve'], 0);
  assert.equal((await b.one<{ n: number }>(`SELECT count(*)::int AS n FROM bucardo_main.sync_recopy`)).n, 1);
  await cli(['run', '-f', file, '--once'], 0);
  const rows = async (db: typeof a) => (await db.query<{ r: string }>(`SELECT t::text AS r FROM public.items t ORDER BY id`)).rows.map((x) => x.r);
  assert.deepEqual(await rows(b), await rows(a), 'the re-copy brought the target back to the source rows (every row matches qty > 0)');
  assert.equal((await b.one<{ n: number }>(`SELECT count(*)::int AS n FROM bucardo_main.sync_recopy`)).n, 0, 'the request is consumed by the run');
  assert.match((await cli(['plan', '-f', file], 0)).stdout, /No changes\./);
});
