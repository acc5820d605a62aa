/**
 * The pgbench tutorial of examples/pgbench, end to end on real clusters, with the SQL taken
 * from its README (so the README stays true): schema on both databases, rows on a, apply
 * one-way.yaml, traffic, `bucardo run --once`, and `bucardo compare` says equal; then the
 * same databases move to multi-source.yaml with writes on both.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { useClusters } from '../helpers/env.js';
import { runCli } from '../helpers/cli.js';
import { packageRoot } from '../../engine/paths.js';

const env = useClusters(['a', 'b']);
const dir = path.join(packageRoot(), 'examples', 'pgbench');
const readme = fs.readFileSync(path.join(dir, 'README.md'), 'utf8');

/** The ```sql block between <!-- NAME --> and <!-- /NAME --> in the README. */
function block(name: string): string {
  const m = new RegExp(`<!-- ${name} -->\\s*\`\`\`sql\\n([\\s\\S]*?)\`\`\`\\s*<!-- /${name} -->`).exec(readme);
  assert.ok(m, `README block ${name}`);
  return m[1]!;
}

test('pgbench one-way: apply, run --once, compare equal; then multi-source with writes on both', { timeout: 300_000 }, async () => {
  const [a, b] = await env.fresh('pgbench', block('pgbench-schema'));
  await a.query(block('pgbench-data'));
  const traffic = block('pgbench-traffic');
  const [createProc, call] = [traffic.slice(0, traffic.indexOf('CALL')), traffic.slice(traffic.indexOf('CALL'))];
  assert.match(call, /^CALL pgbench_tx\(100\);\s*$/);
  const cliEnv = { PGBENCH_A_URL: a.url, PGBENCH_B_URL: b.url };
  const oneWay = path.join(dir, 'one-way.yaml');

  const v = await runCli(['validate', '-f', oneWay], { env: cliEnv });
  assert.equal(v.code, 0, v.out);
  const ap = await runCli(['apply', '-f', oneWay, '--auto-approve'], { env: cliEnv });
  assert.equal(ap.code, 0, ap.out);
  assert.equal((await runCli(['plan', '-f', oneWay, '--detailed-exitcode'], { env: cliEnv })).code, 0, 'no changes after apply');

  await a.query(createProc);
  await a.query('CALL pgbench_tx(50)');
  const run = await runCli(['run', '-f', oneWay, '--once'], { env: cliEnv, timeout: 180_000 });
  assert.equal(run.code, 0, run.out);
  assert.equal((await b.one('SELECT count(*)::int AS n FROM pgbench_accounts')).n, 100_000);
  assert.equal((await b.one('SELECT count(*)::int AS n FROM pgbench_history')).n, 50);

  const cmp = await runCli(['compare', 'pgbench', '-f', oneWay, '--format', 'json'], { env: cliEnv });
  assert.equal(cmp.code, 0, cmp.out);
  const j = JSON.parse(cmp.stdout) as { equal: boolean; tables: { table: string; rows: Record<string, number> }[] };
  assert.equal(j.equal, true);
  assert.deepEqual(j.tables.map((t) => t.table).sort(), [
    'public.pgbench_accounts',
    'public.pgbench_branches',
    'public.pgbench_history',
    'public.pgbench_tellers',
  ]);
  assert.deepEqual(j.tables.find((t) => t.table === 'public.pgbench_accounts')!.rows, { a: 100_000, b: 100_000 });

  // Step 4 of the README: interleave hid, then multi-source over the same databases.
  const step4 = /-- on a\n([\s\S]*?)-- on b\n([\s\S]*?)```/.exec(readme);
  assert.ok(step4);
  await a.query(step4[1]!);
  await b.query(step4[2]!);
  const multi = path.join(dir, 'multi-source.yaml');
  const ap2 = await runCli(['apply', '-f', multi, '--auto-approve'], { env: cliEnv });
  assert.equal(ap2.code, 0, ap2.out);
  await b.query(createProc);
  await Promise.all([a.query('CALL pgbench_tx(40)'), b.query('CALL pgbench_tx(40)')]);
  const run2 = await runCli(['run', '-f', multi, '--once'], { env: cliEnv, timeout: 180_000 });
  assert.equal(run2.code, 0, run2.out);
  const cmp2 = await runCli(['compare', 'pgbench', '-f', multi], { env: cliEnv });
  assert.equal(cmp2.code, 0, cmp2.out);
  assert.match(cmp2.stdout, /Sync pgbench: all 4 tables equal on a, b\./);
  assert.equal((await a.one('SELECT count(*)::int AS n FROM pgbench_history')).n, 130);
});
