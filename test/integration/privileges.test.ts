/**
 * Least privilege: `apply` as an owner role (owns the tables, may CREATE in the database),
 * everything else as a runner role that is not a superuser, with only the grants the
 * README lists. A runner's `plan` checks what its commands need, names each missing
 * grant, and never proposes to destroy what the owner installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useClusters } from '../helpers/env.js';
import { runCli } from '../helpers/cli.js';
import { applyOk, runOnce, assertSame } from '../helpers/install.js';
import { OWNER, RUNNER, APP, SCHEMA, DDL, SCHEMA_GRANTS, sqlAs, leastPrivilegeFiles } from '../helpers/leastprivilege.js';

const env = useClusters(['a', 'b']);

async function setup(tag: string) {
  const [a, b] = await env.fresh(tag, DDL);
  return { a, b, ...(await leastPrivilegeFiles(a, b)) };
}

test('apply as the owner, then plan, run, status, kick and compare as a runner role with the documented grants', async () => {
  const { a, b, ownerFile, runnerFile } = await setup('privs_ok');
  await applyOk(ownerFile);
  for (const d of [a, b]) await sqlAs(OWNER, d, SCHEMA_GRANTS);

  // the owner's plan checks what apply needs: not session_replication_role, which only the runner sets
  const ownerPlan = await runCli(['plan', '-f', ownerFile]);
  assert.equal(ownerPlan.code, 0, ownerPlan.out);
  assert.match(ownerPlan.stdout, /No changes\./);
  assert.doesNotMatch(ownerPlan.out, /warning|error/);

  const plan = await runCli(['plan', '-f', runnerFile]);
  assert.equal(plan.code, 0, plan.out);
  assert.match(plan.stdout, /No changes\./);
  assert.doesNotMatch(plan.out, /destroy|lacks|error/);
  assert.match(
    plan.stdout,
    /user bucardo_runner does not own schema bucardo_main on database a, so it cannot apply there: checked for what run, status, kick and compare need/,
  );

  await sqlAs(APP, a, `INSERT INTO public.items SELECT i, 'a' || i FROM generate_series(1, 20) i`);
  await a.query(`SELECT setval('public.items_seq', 20)`);
  await sqlAs(APP, b, `INSERT INTO public.items SELECT i, 'b' || i FROM generate_series(101, 110) i`);
  await runOnce(runnerFile);
  await assertSame([a, b], ['public.items']);
  assert.equal((await b.one(`SELECT last_value::int AS v FROM public.items_seq`)).v, 20);

  const status = await runCli(['status', '-f', runnerFile, '--format', 'json']);
  assert.equal(status.code, 0, status.out);
  assert.equal(JSON.parse(status.stdout).syncs[0].last_run.rows, 30);

  const cmp = await runCli(['compare', 's1', '-f', runnerFile]);
  assert.equal(cmp.code, 0, cmp.out);

  const kick = await runCli(['kick', 's1', '-f', runnerFile]);
  assert.equal(kick.code, 0, kick.out);
});

test('a runner lacking grants: plan names each missing one with its GRANT, and proposes to destroy nothing', async () => {
  const { a, b, ownerFile, runnerFile } = await setup('privs_lack');
  await applyOk(ownerFile);

  // no grant on bucardo's schema at all: nothing in it can be read, so nothing is compared
  const blind = await runCli(['plan', '-f', runnerFile, '--format', 'json']);
  assert.equal(blind.code, 1, blind.out);
  const j = JSON.parse(blind.stdout);
  assert.deepEqual(j.changes, []);
  const own = `as the schema's owner: GRANT`;
  const ref = '(see the README, "Least privilege")';
  assert.deepEqual(
    j.errors.map((e: { database: string; hint: string }) => [e.database, e.hint]),
    ['a', 'b'].flatMap((d) => [
      [d, `GRANT USAGE ON SCHEMA ${SCHEMA} TO ${RUNNER}`],
      [d, `${own} SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${SCHEMA} TO ${RUNNER} ${ref}`],
      [d, `${own} USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${SCHEMA} TO ${RUNNER} ${ref}`],
    ]),
  );
  assert.match(j.errors[0].message, new RegExp(`^user ${RUNNER} lacks USAGE on SCHEMA ${SCHEMA} on database a$`));

  for (const d of [a, b]) await sqlAs(OWNER, d, SCHEMA_GRANTS);
  await b.query(`REVOKE DELETE ON public.items FROM ${RUNNER}; REVOKE UPDATE ON SEQUENCE public.items_seq FROM ${RUNNER}`);
  await sqlAs(OWNER, a, `REVOKE INSERT ON ALL TABLES IN SCHEMA ${SCHEMA} FROM ${RUNNER}`);
  const r = await runCli(['plan', '-f', runnerFile]);
  assert.equal(r.code, 1, r.out);
  assert.doesNotMatch(r.out, /destroy|TRIGGER/);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('error:'));
  assert.deepEqual(errors.sort(), [
    `error: user ${RUNNER} lacks DELETE on public.items on database b (GRANT DELETE ON public.items TO ${RUNNER})`,
    `error: user ${RUNNER} lacks INSERT on 11 tables of schema ${SCHEMA} on database a (${SCHEMA}.change_index, ${SCHEMA}.conflict, ${SCHEMA}.delta_cda7b43c4b0a, ...) (as the schema's owner: GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${SCHEMA} TO ${RUNNER} (see the README, "Least privilege"))`,
    `error: user ${RUNNER} lacks UPDATE on SEQUENCE public.items_seq on database b (GRANT UPDATE ON SEQUENCE public.items_seq TO ${RUNNER})`,
  ]);
});
