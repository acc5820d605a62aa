/**
 * Least privilege: `apply` as an owner role (owns the tables, may CREATE in the database),
 * everything else as a runner role that is not a superuser, with only the grants the
 * README lists. A runner's `plan` checks what its commands need, names each missing
 * grant, and never proposes to destroy what the owner installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useClusters, simpleTopology, writeTopology, type TestDb } from '../helpers/env.js';
import { runCli } from '../helpers/cli.js';
import { applyOk, runOnce, assertSame } from '../helpers/install.js';

const env = useClusters(['a', 'b']);

const OWNER = 'bucardo_owner';
const RUNNER = 'bucardo_runner';
const PASSWORD = 'Least-Priv-pw-1';
const SCHEMA = 'bucardo_main';

const ROLES = `DO $$BEGIN
  CREATE ROLE ${OWNER} LOGIN PASSWORD '${PASSWORD}';
  CREATE ROLE ${RUNNER} LOGIN PASSWORD '${PASSWORD}';
EXCEPTION WHEN duplicate_object THEN NULL; END$$`;

const DDL = `
  CREATE TABLE public.items (id bigint PRIMARY KEY, name text NOT NULL);
  CREATE SEQUENCE public.items_seq;
`;

/** What a superuser runs once per database: the README's owner block, and the runner's grants on the user's objects. */
function setupSql(db: TestDb): string {
  return `
    ALTER TABLE public.items OWNER TO ${OWNER};
    ALTER SEQUENCE public.items_seq OWNER TO ${OWNER};
    GRANT CREATE ON DATABASE "${db.dbname}" TO ${OWNER};
    GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON public.items TO ${RUNNER};
    GRANT SELECT, UPDATE ON SEQUENCE public.items_seq TO ${RUNNER};
    GRANT SET ON PARAMETER session_replication_role TO ${RUNNER};
  `;
}

/** The README's runner block on bucardo's schema, run by the owner once apply created it. */
const RUNNER_SCHEMA_GRANTS = `
  GRANT USAGE ON SCHEMA ${SCHEMA} TO ${RUNNER};
  GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA ${SCHEMA} TO ${RUNNER};
  GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA ${SCHEMA} TO ${RUNNER};
  ALTER DEFAULT PRIVILEGES IN SCHEMA ${SCHEMA} GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLES TO ${RUNNER};
  ALTER DEFAULT PRIVILEGES IN SCHEMA ${SCHEMA} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO ${RUNNER};
`;

const as = (role: string, db: TestDb) => db.cluster.url(db.dbname, role, PASSWORD);

async function setup(tag: string) {
  const [a, b] = await env.fresh(tag, DDL);
  await a.query(ROLES);
  await b.query(ROLES);
  for (const d of [a, b]) await d.query(setupSql(d));
  const topo = (role: string) =>
    simpleTopology({
      sources: [a, b],
      tables: ['public.items'],
      sequences: ['public.items_seq'],
      sync: { conflict: 'latest' },
      dbExtra: { a: { url: as(role, a) }, b: { url: as(role, b) } },
    });
  const ownerFile = writeTopology(topo(OWNER));
  const runnerFile = writeTopology(topo(RUNNER));
  return { a, b, ownerFile, runnerFile };
}

/** Runs SQL as the owner role on a database. */
async function asOwner(db: TestDb, sql: string) {
  const pg = (await import('pg')).default;
  const c = new pg.Client({ connectionString: as(OWNER, db) });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

test('apply as the owner, then plan, run, status, kick and compare as a runner role with the documented grants', async () => {
  const { a, b, ownerFile, runnerFile } = await setup('privs_ok');
  await applyOk(ownerFile);
  for (const d of [a, b]) await asOwner(d, RUNNER_SCHEMA_GRANTS);

  const plan = await runCli(['plan', '-f', runnerFile]);
  assert.equal(plan.code, 0, plan.out);
  assert.match(plan.stdout, /No changes\./);
  assert.doesNotMatch(plan.out, /destroy|lacks/);

  await a.query(`INSERT INTO public.items SELECT i, 'a' || i FROM generate_series(1, 20) i; SELECT setval('public.items_seq', 20)`);
  await b.query(`INSERT INTO public.items SELECT i, 'b' || i FROM generate_series(101, 110) i`);
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
