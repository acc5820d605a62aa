/**
 * Issue 9: no committed write is ever lost or overwritten by an older one. Each test
 * reproduces one way the protocol lost data before (they all failed on 1c4b8b7) and pins
 * the fix. The clusters allow two-phase commit (max_prepared_transactions > 0), so every
 * autokick here takes the path that PREPARE TRANSACTION tolerates.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { useClusters, simpleTopology, writeTopology, waitFor, type TestDb } from '../helpers/env.js';
import { applyOk, runOnce, assertSame } from '../helpers/install.js';
import { runCli, spawnCli } from '../helpers/cli.js';

// r: a cluster whose transaction ids lag far behind a's (the "restored" source)
const env = useClusters(['a', 'b', 'c', 'r'], { settings: { max_prepared_transactions: '10' } });

const DDL = `CREATE TABLE public.items (id integer PRIMARY KEY, name text);`;
const name = async (d: TestDb, id: number) => (await d.query('SELECT name FROM public.items WHERE id = $1', [id])).rows[0]?.name ?? null;
const ids = async (d: TestDb) => (await d.query('SELECT id FROM public.items ORDER BY id')).rows.map((r: { id: number }) => r.id);

async function client(d: TestDb): Promise<pg.Client> {
  const c = new pg.Client(d.cluster.clientConfig(d.dbname));
  await c.connect();
  return c;
}

/** Rows left in the change logs of topology main in `d`: TRUNCATEs and deltas. */
async function changeLogRows(d: TestDb): Promise<{ truncates: number; deltas: number }> {
  const tables = (
    await d.query(
      `SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'bucardo_main' AND c.relkind = 'r' AND c.relname LIKE 'delta\\_%'`,
    )
  ).rows;
  assert.ok(tables.length > 0, 'no delta table found');
  let deltas = 0;
  for (const t of tables) deltas += (await d.query(`SELECT count(*)::int AS n FROM bucardo_main.${t.relname}`)).rows[0].n;
  const truncates = (await d.query(`SELECT count(*)::int AS n FROM bucardo_main.truncate_log`)).rows[0].n;
  return { truncates, deltas };
}

/** Sessions of the runner in `d` that wait for a lock (application_name bucardo:...). */
async function runnerLockWaits(d: TestDb): Promise<number> {
  const r = await d.query(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'bucardo:%' AND wait_event_type = 'Lock'`,
  );
  return r.rows[0].n;
}

test('a local write that commits while a run is in progress is settled as a conflict, not overwritten', async () => {
  const [a, b] = await env.fresh('race', DDL, ['a', 'b']);
  const file = writeTopology(simpleTopology({ sources: [a, b], tables: ['public.items'], sync: { conflict: 'latest' } }));
  await applyOk(file);
  await a.query(`INSERT INTO public.items VALUES (1, 'orig'), (2, 'two')`);
  await runOnce(file);
  await b.query(`UPDATE public.items SET name = 'b' WHERE id = 1`);
  const u = await client(a);
  try {
    await u.query('BEGIN');
    await u.query(`UPDATE public.items SET name = 'a' WHERE id = 1`); // later than b's, still open
    const run = spawnCli(['run', '-f', file, '--once']);
    // the run has read its snapshot: either it waits for U's row lock, or it is done
    await waitFor(async () => (await runnerLockWaits(a)) > 0 || run.child.exitCode !== null, 'the run to reach a');
    await u.query('COMMIT');
    const exit = await run.exited;
    assert.equal(exit.code, 0, run.output().stdout + run.output().stderr);
  } finally {
    await u.end();
  }
  const again = await runOnce(file);
  assert.match(again.stdout, /conflicts=1/, again.stdout);
  assert.match(again.stdout, /conflict sync=s1 table=public\.items key=\{"id":1\} winner=a/);
  assert.equal(await name(a, 1), 'a');
  assert.equal(await name(b, 1), 'a');
  await assertSame([a, b], ['public.items']);
});

test('a TRUNCATE on a source that commits while a run waits to write there is not undone by the run', async () => {
  // Found by the convergence test (seeds 98986959, 421325480, 1117456297): the guarded
  // write checked for a TRUNCATE since the snapshot before it took the table's lock, so a
  // TRUNCATE that committed while the run waited for that lock got the run's older rows
  // written after it, on the database whose TRUNCATE then won everywhere else.
  const [a, b] = await env.fresh('trunc_race', DDL, ['a', 'b']);
  const file = writeTopology(simpleTopology({ sources: [a, b], tables: ['public.items'], sync: { conflict: 'latest' } }));
  await applyOk(file);
  await a.query(`INSERT INTO public.items VALUES (1, 'one'), (2, 'two')`);
  await runOnce(file);
  await a.query(`UPDATE public.items SET name = 'older' WHERE id = 1`);
  const u = await client(b);
  try {
    await u.query('BEGIN');
    await u.query('TRUNCATE public.items'); // newer than a's update, still open
    const run = spawnCli(['run', '-f', file, '--once']);
    await waitFor(async () => (await runnerLockWaits(b)) > 0 || run.child.exitCode !== null, 'the run to wait for the table on b');
    await u.query('COMMIT');
    const exit = await run.exited;
    assert.equal(exit.code, 0, run.output().stdout + run.output().stderr);
  } finally {
    await u.end();
  }
  await runOnce(file);
  assert.deepEqual(await ids(b), [], 'the run wrote into b after its TRUNCATE');
  assert.deepEqual(await ids(a), []);
  await assertSame([a, b], ['public.items']);
});

test('a delta sync and a fullcopy sync reading one source: consumed changes are purged', async () => {
  const [a, b, c] = await env.fresh('purgefc', DDL, ['a', 'b', 'c']);
  const file = writeTopology({
    version: 1,
    databases: { a: { url: a.url }, b: { url: b.url }, c: { url: c.url } },
    relgroups: { g: { tables: ['public.items'] } },
    syncs: {
      live: { relgroup: 'g', sources: ['a'], targets: ['b'] },
      archive: { kind: 'fullcopy', relgroup: 'g', sources: ['a'], targets: ['c'] },
    },
  });
  await applyOk(file);
  await a.query(`INSERT INTO public.items SELECT i, 'x' FROM generate_series(1, 2000) i`);
  await a.query(`TRUNCATE public.items`);
  await a.query(`INSERT INTO public.items SELECT i, 'y' FROM generate_series(1, 500) i`);
  await runOnce(file);
  await runOnce(file); // the second run confirms again and purges what the first left
  await assertSame([a, b, c], ['public.items']);
  assert.deepEqual(await changeLogRows(a), { truncates: 0, deltas: 0 });
});

test('two-phase commit works on a source with an idle runner and autokick, and prepared writes replicate once committed', async () => {
  const [a, b] = await env.fresh('twopc', DDL, ['a', 'b']);
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ['public.items'] }));
  await applyOk(file);
  const runner = spawnCli(['run', '-f', file]);
  const c = await client(a);
  try {
    await a.query(`INSERT INTO public.items VALUES (1, 'first')`);
    await waitFor(async () => (await name(b, 1)) === 'first', 'the first row on b');
    // idle: the runner holds the kick gate, so a writer cannot skip the wake-up
    await waitFor(
      async () =>
        (
          await a.query(`SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND s.application_name = 'bucardo:gate'`)
        ).rows[0].n > 0,
      'the runner to hold the kick gate',
    );
    await c.query('BEGIN');
    await c.query(`INSERT INTO public.items VALUES (2, 'prepared')`);
    await c.query(`PREPARE TRANSACTION 'bucardo_test_2pc'`);
    await a.query(`INSERT INTO public.items VALUES (3, 'plain')`);
    await waitFor(async () => (await name(b, 3)) === 'plain', 'a plain write next to the prepared one');
    assert.equal(await name(b, 2), null);
    await a.query(`COMMIT PREPARED 'bucardo_test_2pc'`);
    await waitFor(async () => (await name(b, 2)) === 'prepared', 'the prepared row on b once committed');
    // and a prepared transaction that started while the runner was busy
    await c.query('BEGIN');
    await c.query(`INSERT INTO public.items VALUES (4, 'prepared again')`);
    await c.query(`PREPARE TRANSACTION 'bucardo_test_2pc_b'`);
    await a.query(`COMMIT PREPARED 'bucardo_test_2pc_b'`);
    await waitFor(async () => (await name(b, 4)) === 'prepared again', 'the second prepared row on b');
  } finally {
    await a.query(`ROLLBACK PREPARED 'bucardo_test_2pc'`).catch(() => {});
    await a.query(`ROLLBACK PREPARED 'bucardo_test_2pc_b'`).catch(() => {});
    await c.end();
    runner.kill('SIGTERM');
    await runner.exited;
  }
  await assertSame([a, b], ['public.items']);
});

test('a run that fails between commits after a database joined resumes every database from its own watermark', async () => {
  const [a, b, c] = await env.fresh('order', DDL, ['a', 'b', 'c']);
  const one = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ['public.items'] }));
  await applyOk(one);
  await a.query(`INSERT INTO public.items SELECT i, 'first' FROM generate_series(1, 10) i`);
  await runOnce(one);
  // c joins (listed before b, so it commits before b); b's commit will fail once
  const two = writeTopology(simpleTopology({ sources: [a], targets: [c, b], tables: ['public.items'] }));
  await applyOk(two);
  await b.query(`CREATE TABLE public.fail_once (on_ boolean);
    INSERT INTO public.fail_once VALUES (true);
    CREATE FUNCTION public.fail_commit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF EXISTS (SELECT 1 FROM public.fail_once) THEN RAISE EXCEPTION 'injected commit failure'; END IF; RETURN NULL; END $$;
    CREATE CONSTRAINT TRIGGER fail_commit AFTER INSERT ON public.items DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.fail_commit();
    ALTER TABLE public.items ENABLE ALWAYS TRIGGER fail_commit;`);
  await a.query(`INSERT INTO public.items SELECT i, 'second' FROM generate_series(11, 20) i`);
  const failed = await runCli(['run', '-f', two, '--once']);
  assert.equal(failed.code, 1, failed.out);
  assert.match(failed.out, /injected commit failure/);
  assert.deepEqual(
    await ids(c),
    Array.from({ length: 20 }, (_, i) => i + 1),
    'c committed the failed run',
  );
  await b.query(`DELETE FROM public.fail_once`);
  await runOnce(two);
  await assertSame([a, b, c], ['public.items']);
});

test('runners exclude each other on every database: a lost lock session or another source order never lets two runs overlap', async () => {
  const [a, b, c] = await env.fresh('fence', DDL, ['a', 'b', 'c']);
  const topo = (order: TestDb[]) => simpleTopology({ sources: order, targets: [c], tables: ['public.items'] });
  const file = writeTopology(topo([a, b]));
  const reversed = writeTopology(topo([b, a]));
  await applyOk(file);
  await a.query(`INSERT INTO public.items VALUES (1, 'a')`);
  // an application holds c's table: the first runner's run stops there
  const blocker = await client(c);
  const r1 = spawnCli(['run', '-f', file, '--once']);
  let r2: ReturnType<typeof spawnCli> | null = null;
  try {
    await blocker.query('BEGIN; LOCK TABLE public.items IN ACCESS EXCLUSIVE MODE');
    await waitFor(async () => (await runnerLockWaits(c)) > 0, 'the first runner to wait on c');
    // its session on the first source dies (a proxy, idle_in_transaction_session_timeout, ...)
    await a.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'bucardo:s1:read%'`);
    for (const other of [file, reversed]) {
      r2 = spawnCli(['run', '-f', other, '--once']);
      await waitFor(async () => /busy sync=s1/.test(r2!.output().stdout) || (await runnerLockWaits(c)) > 1, 'the second runner to decide');
      assert.match(
        r2.output().stdout,
        /busy sync=s1/,
        `a second runner (${other === file ? 'same file' : 'sources reversed'}) ran the sync while the first was in its run`,
      );
      r2.kill('SIGKILL');
      await r2.exited;
      r2 = null;
    }
  } finally {
    await blocker.query('ROLLBACK').catch(() => {});
    await blocker.end();
    r2?.kill('SIGKILL');
    await r1.exited;
  }
  await runOnce(file);
  await assertSame([a, b, c], ['public.items']);
});

test('a source whose transaction ids went backwards (restored from a dump) is refused, and nothing is purged', async () => {
  const [a, b] = await env.fresh('restore', DDL, ['a', 'b']);
  const [r] = await env.fresh('restored', DDL, ['r']);
  // a's cluster has handed out many more transaction ids than r's
  const burn = await client(a);
  try {
    for (let i = 0; i < 3000; i++) await burn.query('SELECT pg_current_xact_id()');
  } finally {
    await burn.end();
  }
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ['public.items'] }));
  await applyOk(file);
  await a.query(`INSERT INTO public.items SELECT i, 'before' FROM generate_series(1, 5) i`);
  await runOnce(file);
  // "restore" a into r: its rows and bucardo's metadata, as pg_dump carries them
  const moved = writeTopology(simpleTopology({ sources: [{ ...a, url: r.url, name: 'a' } as TestDb], targets: [b], tables: ['public.items'] }));
  await applyOk(moved);
  await r.query(`INSERT INTO public.items SELECT i, 'before' FROM generate_series(1, 5) i`);
  for (const t of ['sync_state', 'meta']) {
    const rows = (await a.query(`SELECT to_jsonb(x) AS j FROM bucardo_main.${t} x`)).rows.map((x: { j: unknown }) => x.j);
    await r.query(`DELETE FROM bucardo_main.${t}`);
    await r.query(`INSERT INTO bucardo_main.${t} SELECT * FROM jsonb_populate_recordset(NULL::bucardo_main.${t}, $1::jsonb)`, [JSON.stringify(rows)]);
  }
  await r.query(`INSERT INTO public.items VALUES (6, 'after restore')`);
  const res = await runCli(['run', '-f', moved, '--once']);
  assert.equal(res.code, 1, res.out);
  assert.match(res.out, /database a/);
  assert.match(res.out, /transaction ids went backwards|restored/);
  assert.doesNotMatch(res.out, /this looks like a bug/);
  const deltas = await r.query(
    `SELECT count(*)::int AS n FROM bucardo_main.${(await r.query(`SELECT relname FROM pg_class WHERE relname LIKE 'delta\\_%'`)).rows[0].relname}`,
  );
  assert.ok(deltas.rows[0].n >= 1, 'the change made after the restore is still pending');
  assert.equal(await name(b, 6), null);
});

test('run --once under a steady write load replicates what was committed before it started, then exits', async () => {
  const [a, b] = await env.fresh('onceload', DDL, ['a', 'b']);
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ['public.items'] }));
  await applyOk(file);
  const w = await client(a);
  let stop = false;
  let next = 1;
  const writer = (async () => {
    while (!stop) await w.query('INSERT INTO public.items VALUES ($1, $2)', [next++, 'load']);
  })();
  try {
    await waitFor(() => next > 200, 'a write load');
    const before = next - 1; // committed before run --once starts
    const r = await runCli(['run', '-f', file, '--once'], { timeout: 90_000 });
    assert.equal(r.code, 0, r.out);
    const got = new Set(await ids(b));
    const missing = Array.from({ length: before }, (_, i) => i + 1).filter((i) => !got.has(i));
    assert.deepEqual(missing, []);
  } finally {
    stop = true;
    await writer;
    await w.end();
  }
});

test("capture never makes an application write fail: columns named like the capture function's own variables", async () => {
  const ddl = `CREATE TABLE public.odd ("ts" integer PRIMARY KEY, n text, bucardo_capture text);`;
  const [a, b] = await env.fresh('oddcols', ddl, ['a', 'b']);
  const file = writeTopology(simpleTopology({ sources: [a, b], tables: ['public.odd'] }));
  await applyOk(file);
  await a.query(`INSERT INTO public.odd VALUES (1, 'n', 'c'), (2, 'n2', 'c2')`);
  await a.query(`UPDATE public.odd SET "ts" = 3 WHERE "ts" = 2`);
  await b.query(`INSERT INTO public.odd VALUES (10, 'b', 'b')`);
  await runOnce(file);
  await a.query(`DELETE FROM public.odd WHERE "ts" = 1`);
  await b.query(`TRUNCATE public.odd`);
  await b.query(`INSERT INTO public.odd VALUES (11, 'b', 'b')`);
  await runOnce(file);
  await assertSame([a, b], ['public.odd']);
  assert.deepEqual(
    (await a.query(`SELECT "ts" FROM public.odd ORDER BY 1`)).rows.map((r: { ts: number }) => r.ts),
    [11],
  );
});

test('a onetimecopy and a TRUNCATE on another source in the same run: the TRUNCATE wins, later rows survive everywhere', async () => {
  const [a, b, c] = await env.fresh('copytrunc', DDL, ['a', 'b', 'c']);
  await a.query(`INSERT INTO public.items SELECT i, 'old' FROM generate_series(1, 5) i`);
  const file = writeTopology(simpleTopology({ sources: [a, b], targets: [c], tables: ['public.items'], sync: { onetimecopy: 'always' } }));
  await applyOk(file);
  await b.query(`TRUNCATE public.items`);
  await a.query(`INSERT INTO public.items VALUES (6, 'after the truncate')`);
  await runOnce(file);
  await assertSame([a, b, c], ['public.items']);
  assert.deepEqual(await ids(a), [6]);
});

test('run history is kept for run_history (default 14 days), the latest run of each sync always', async () => {
  const [a, b] = await env.fresh('history', DDL, ['a', 'b']);
  const file = writeTopology({ ...simpleTopology({ sources: [a], targets: [b], tables: ['public.items'] }), run_history: '2d' });
  await applyOk(file);
  await a.query(`INSERT INTO public.items VALUES (1, 'x')`);
  await runOnce(file);
  for (const d of [a, b]) {
    await d.query(
      `INSERT INTO bucardo_main.run (run_id, sync, started, finished) VALUES ('old', 's1', now() - interval '3 days', now() - interval '3 days'), ('recent', 's1', now() - interval '1 day', now() - interval '1 day')`,
    );
    await d.query(
      `INSERT INTO bucardo_main.conflict (run_id, sync, table_schema, table_name, key, at) VALUES ('old', 's1', 'public', 'items', '{}', now() - interval '3 days')`,
    );
  }
  await a.query(`INSERT INTO public.items VALUES (2, 'y')`);
  await runOnce(file);
  for (const d of [a, b]) {
    const runs = (await d.query(`SELECT run_id FROM bucardo_main.run WHERE run_id IN ('old', 'recent')`)).rows.map((r: { run_id: string }) => r.run_id);
    assert.deepEqual(runs, ['recent'], d.name);
    assert.equal((await d.one(`SELECT count(*)::int AS n FROM bucardo_main.conflict`)).n, 0);
    assert.ok((await d.one(`SELECT count(*)::int AS n FROM bucardo_main.run WHERE error IS NULL`)).n >= 2);
  }
});

test('a prepared transaction holding a key the run writes stalls nothing: the table waits for the next run there', async () => {
  const [a, b] = await env.fresh('prepstall', `${DDL} CREATE TABLE public.other (id integer PRIMARY KEY, name text);`, ['a', 'b']);
  const file = writeTopology(simpleTopology({ sources: [a, b], tables: ['public.items', 'public.other'] }));
  await applyOk(file);
  await a.query(`INSERT INTO public.items VALUES (1, 'one'), (2, 'two')`);
  await runOnce(file);
  const c = await client(a);
  try {
    await c.query('BEGIN');
    await c.query(`INSERT INTO public.items VALUES (50, 'a prepared')`);
    await c.query(`UPDATE public.items SET name = 'a prepared' WHERE id = 1`);
    await c.query(`PREPARE TRANSACTION 'bucardo_test_stall'`);
    await b.query(`INSERT INTO public.items VALUES (50, 'b later')`);
    await b.query(`UPDATE public.items SET name = 'b later' WHERE id = 1`);
    await b.query(`UPDATE public.items SET name = 'b two' WHERE id = 2`);
    await b.query(`INSERT INTO public.other VALUES (7, 'other')`);
    const r = await runOnce(file); // does not wait for the prepared transaction
    assert.match(r.stdout, /deferred=public\.items=3/, r.stdout);
    assert.equal((await a.one(`SELECT name FROM public.other WHERE id = 7`))?.name, 'other', 'the rest of the run went through');
    assert.equal(await name(a, 2), 'two', 'the whole table waits');
    await a.query(`COMMIT PREPARED 'bucardo_test_stall'`);
  } finally {
    await a.query(`ROLLBACK PREPARED 'bucardo_test_stall'`).catch(() => {});
    await c.end();
  }
  await runOnce(file);
  await assertSame([a, b], ['public.items']);
  assert.equal(await name(a, 50), 'b later');
  assert.equal(await name(a, 1), 'b later');
});
