// Upgrading bucardo itself: an install made by an earlier bucardo (test/fixtures/metadata-2,
// metadata 2 and that release's capture function and key-change trigger) is upgraded by
// plan/apply in place, under a write load on the source, and no write goes uncaptured;
// changes the old capture recorded and no run consumed yet (no change index then) reach the
// target after it, then a runner running through a second write load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { useClusters, writeTopology, simpleTopology, waitFor, type TestDb } from '../helpers/env.js';
import { runCli, spawnCli, type CliResult } from '../helpers/cli.js';
import { runOnce, assertSame } from '../helpers/install.js';
import { APP, ROLES, as } from '../helpers/leastprivilege.js';

const env = useClusters(['a', 'b']);

/** test/fixtures/metadata-2 in the source tree, from dist/test/integration/. */
const FIXTURE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/metadata-2');
const DDL = 'CREATE TABLE public.item (id integer PRIMARY KEY, v text NOT NULL)';

const show = (r: CliResult) => `\nexit=${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

/** OIDs of the capture objects: a destroy + create would give them new ones. */
async function captureOids(db: TestDb): Promise<string[]> {
  const r = await db.query<{ x: string }>(`
    SELECT 'trigger ' || tgname || ' ' || oid AS x FROM pg_trigger WHERE tgrelid = 'public.item'::regclass AND NOT tgisinternal
    UNION ALL SELECT 'function ' || proname || ' ' || oid FROM pg_proc WHERE pronamespace = 'bucardo_main'::regnamespace
    UNION ALL SELECT 'table ' || relname || ' ' || oid FROM pg_class WHERE relnamespace = 'bucardo_main'::regnamespace AND relname LIKE 'delta_%'
    ORDER BY 1`);
  return r.rows.map((row) => row.x);
}

/** Inserts a new row and updates an older one, over and over, until stopped; counts the writes that committed. */
function startWriter(url: string, firstId: number) {
  const client = new pg.Client({ connectionString: url });
  const state = { writes: 0, errors: [] as string[], stop: false };
  const done = (async () => {
    await client.connect();
    try {
      // bounded: a test that hangs elsewhere must not leave it writing forever
      for (let id = firstId; !state.stop && id < firstId + 100_000; id++) {
        try {
          await client.query('BEGIN');
          await client.query('INSERT INTO public.item (id, v) VALUES ($1, $2)', [id, `new ${id}`]);
          await client.query('UPDATE public.item SET v = $2 WHERE id = $1', [firstId + ((id * 7) % (id - firstId + 1)), `upd ${id}`]);
          await client.query('COMMIT');
          state.writes++;
        } catch (e) {
          state.errors.push((e as Error).message);
          await client.query('ROLLBACK').catch(() => {});
        }
      }
    } finally {
      await client.end();
    }
  })();
  return {
    state,
    async stop() {
      state.stop = true;
      await done;
    },
  };
}

test('an install by bucardo 906ef2c (metadata 2) is upgraded in place under a write load', async () => {
  const [a, b] = await env.fresh('upg', DDL);
  await a.query(fs.readFileSync(path.join(FIXTURE, 'source.sql'), 'utf8'));
  await b.query(fs.readFileSync(path.join(FIXTURE, 'target.sql'), 'utf8'));
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ['public.item'], sync: { onetimecopy: 'never' } }));
  // captured by the old release's function and triggers
  await a.query(`INSERT INTO public.item SELECT i, 'before ' || i FROM generate_series(1, 10) i`);
  // a run of that release consumed these (this bucardo's runner needs metadata 3 or later):
  // its watermark, taken before the upgrade, and the rows on b
  const snap = await a.one<{ s: string }>('SELECT pg_current_snapshot()::text AS s');
  const watermark = JSON.stringify({ a: snap.s });
  await b.query(`INSERT INTO public.item SELECT i, 'before ' || i FROM generate_series(1, 10) i`);
  for (const d of [a, b]) {
    await d.query(`INSERT INTO bucardo_main.sync_state (sync, run_seq, snapshots, confirmed) VALUES ('s1', 1, $1::jsonb, $2::jsonb)`, [
      watermark,
      d === a ? watermark : '{}',
    ]);
  }
  await a.query(`INSERT INTO public.item SELECT i, 'before ' || i FROM generate_series(11, 20) i`);
  await a.query(`UPDATE public.item SET id = id + 100 WHERE id <= 2`);
  const oidsBefore = await captureOids(a);

  // the application writes as a role of its own, with the grants that release's README
  // asked for (no default privileges): the upgrade must not make its writes fail
  await a.query(ROLES);
  await a.query(`GRANT USAGE ON SCHEMA bucardo_main TO ${APP};
    GRANT INSERT ON ALL TABLES IN SCHEMA bucardo_main TO ${APP};
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA bucardo_main TO ${APP};
    GRANT SELECT, INSERT, UPDATE ON public.item TO ${APP}`);
  const writer = startWriter(as(APP, a), 1000);
  try {
    await waitFor(() => writer.state.writes >= 20, 'the writer to get going');

    const plan = await runCli(['plan', '-f', file, '--no-color']);
    assert.equal(plan.code, 0, show(plan));
    assert.match(
      plan.stdout,
      /~ schema bucardo_main\n\s+metadata version 2 -> 4 \(installed by an earlier bucardo\), in place: adds table sync_recopy, table change_index \(granted as truncate_log\)\n/,
      show(plan),
    );
    assert.match(plan.stdout, /~ function bucardo_main\.capture_\w+\(\)\n\s+installed by an earlier bucardo \(metadata version 2\)/, show(plan));
    assert.match(plan.stdout, /~ trigger bucardo_main_\w+_k on public\.item\n\s+installed by an earlier bucardo: it fires only on UPDATE OF id/, show(plan));
    // a change's line is its mark padded to three, after two spaces (function diffs are indented further)
    assert.doesNotMatch(plan.stdout, /^ {2}( {2}-|-\/\+) /m, `no destroy or replace expected${show(plan)}`);
    assert.match(plan.stdout, /Plan: 0 to add, \d+ to change, 0 to destroy\./, show(plan));

    const json = await runCli(['plan', '-f', file, '--format', 'json']);
    const doc = JSON.parse(json.stdout) as { changes: { action: string; object: string }[] };
    assert.deepEqual(
      doc.changes.filter((c) => c.action !== 'update'),
      [],
      'every change of an upgrade is an in-place update',
    );

    const atApply = writer.state.writes;
    const applied = await runCli(['apply', '-f', file, '--auto-approve', '--no-color']);
    assert.equal(applied.code, 0, show(applied));
    const afterApply = writer.state.writes;
    assert.ok(afterApply > atApply, 'the writer kept writing while apply ran');
    await waitFor(() => writer.state.writes >= afterApply + 20, 'writes after the apply');
  } finally {
    await writer.stop();
  }
  assert.deepEqual(writer.state.errors, [], 'no write failed during the upgrade');
  assert.deepEqual(await captureOids(a), oidsBefore, 'the capture objects were changed in place, not dropped and created');
  const meta = await a.one<{ value: string }>(`SELECT value FROM bucardo_main.meta WHERE key = 'schema_version'`);
  assert.equal(meta.value, '4');
  // the new table is granted as truncate_log is: the application's capture inserts into it
  // in a sync of 100 tables or more, and no default privileges were set for it
  const granted = await a.one<{ ok: boolean }>(`SELECT has_table_privilege($1, 'bucardo_main.change_index', 'INSERT') AS ok`, [APP]);
  assert.equal(granted.ok, true, `${APP} may insert into change_index`);

  // the first run after the upgrade resumes from a watermark older than the change index:
  // it must look into every delta table, or the changes made before the apply are lost
  await runOnce(file);
  const n = await b.one<{ n: number }>('SELECT count(*)::int AS n FROM public.item');
  assert.equal(n.n, 20 + writer.state.writes, 'every row written before, during and after the apply reached the target');
  await assertSame([a, b], ['public.item'], 'after the upgrade');

  // a runner running through more writes: from here on runs read the change index
  const runner = spawnCli(['run', '-f', file]);
  const more = startWriter(as(APP, a), 200_000);
  try {
    await waitFor(() => more.state.writes >= 50, 'writes with the runner running');
  } finally {
    await more.stop();
  }
  try {
    assert.deepEqual(more.state.errors, [], 'no write failed');
    await waitFor(
      async () => (await b.one<{ n: number }>('SELECT count(*)::int AS n FROM public.item')).n === 20 + writer.state.writes + more.state.writes,
      'the runner to catch up',
      30_000,
    );
  } finally {
    await runner.stop();
  }
  await assertSame([a, b], ['public.item'], 'after the runner caught up');

  const again = await runCli(['plan', '-f', file, '--no-color']);
  assert.equal(again.code, 0, show(again));
  assert.equal(again.stdout.trim().split('\n').pop(), 'No changes.', show(again));
});
