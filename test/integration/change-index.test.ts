// The change index (docs/protocol.md, step 3): each transaction that writes changes of a
// captured table is noted once per table in bucardo_main.change_index, by a trigger on the
// table's delta table; a run reads the index to know which tables to look into, and trusts
// it only from the apply that last made a log trigger on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { useClusters, writeTopology, simpleTopology, waitFor, type TestDb } from '../helpers/env.js';
import { runCli, spawnCli } from '../helpers/cli.js';
import { applyOk, runOnce, assertSame } from '../helpers/install.js';
import { tableId, deltaTableName } from '../../engine/objectnames.js';
import { CHANGE_INDEX_MIN_TABLES } from '../../engine/sql/capture.js';

const env = useClusters(['a', 'b']);

// three tables written, and enough idle ones for the sync to get the change index (it
// stays at CHANGE_INDEX_MIN_TABLES or more when a test removes t3)
const FILLERS = CHANGE_INDEX_MIN_TABLES - 1;
const DDL = `CREATE TABLE public.t1 (id integer PRIMARY KEY, v text);
  CREATE TABLE public.t2 (id integer PRIMARY KEY, v text);
  CREATE TABLE public.t3 (id integer PRIMARY KEY, v text);
  DO $$ BEGIN FOR i IN 1..${FILLERS} LOOP EXECUTE format('CREATE TABLE public.%I (id integer PRIMARY KEY)', 'f' || i); END LOOP; END $$`;
const TABLES = ['public.t1', 'public.t2', 'public.t3'];
const ALL = [...TABLES, ...Array.from({ length: FILLERS }, (_, i) => `public.f${i + 1}`)];
const id = (name: string) => tableId('public', name);
const delta = (name: string) => `bucardo_main.${deltaTableName(id(name))}`;

async function setup(tag: string): Promise<{ a: TestDb; b: TestDb; file: string }> {
  const [a, b] = await env.fresh(tag, DDL);
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ALL }));
  await applyOk(file);
  return { a, b, file };
}

/** The tables the index names for transaction `txid`, in order (a table twice would be a second note). */
async function noted(a: TestDb, txid: string): Promise<string[]> {
  const r = await a.query<{ table_id: string }>(`SELECT table_id FROM bucardo_main.change_index WHERE _bucardo_txid = $1::xid8 ORDER BY table_id`, [txid]);
  return r.rows.map((x) => x.table_id);
}

test('a sync under CHANGE_INDEX_MIN_TABLES tables: no log triggers, and its writers note nothing', async () => {
  const [a, b] = await env.fresh('log_small', DDL);
  await applyOk(writeTopology(simpleTopology({ sources: [a], targets: [b], tables: TABLES })));
  const logs = await a.one<{ n: number }>(`SELECT count(*)::int AS n FROM pg_trigger WHERE tgname LIKE 'bucardo\\_main\\_%\\_l'`);
  assert.equal(logs.n, 0);
  await a.query(`INSERT INTO public.t1 VALUES (1, 'a'); INSERT INTO public.t2 VALUES (1, 'a')`);
  assert.equal((await a.one<{ n: number }>('SELECT count(*)::int AS n FROM bucardo_main.change_index')).n, 0);
  await runOnce(writeTopology(simpleTopology({ sources: [a], targets: [b], tables: TABLES })));
  await assertSame([a, b], TABLES);
});

test('a transaction is noted once per table it wrote, whatever the statements and savepoints', async () => {
  const { a } = await setup('log_once');
  const c = new pg.Client({ connectionString: a.url });
  await c.connect();
  try {
    const tx = async (sqls: string[]) => {
      await c.query('BEGIN');
      for (const sql of sqls) await c.query(sql);
      const { rows } = await c.query<{ x: string }>('SELECT pg_current_xact_id()::text AS x');
      await c.query('COMMIT');
      return rows[0].x;
    };
    // three statements on t1, one on t2: one note each
    const t = await tx([
      `INSERT INTO public.t1 VALUES (1, 'a')`,
      `UPDATE public.t1 SET v = 'b' WHERE id = 1`,
      `INSERT INTO public.t2 VALUES (1, 'a')`,
      `DELETE FROM public.t1 WHERE id = 1`,
    ]);
    assert.deepEqual(await noted(a, t), [id('t1'), id('t2')].sort());

    // the first write of t3 is in a savepoint rolled back: its note goes with it, and the
    // next write of t3 in the transaction notes it again (else t3's change would be unseen)
    const s = await tx([
      `INSERT INTO public.t1 VALUES (2, 'a')`,
      'SAVEPOINT x',
      `INSERT INTO public.t3 VALUES (1, 'rolled back')`,
      'ROLLBACK TO SAVEPOINT x',
      `INSERT INTO public.t3 VALUES (2, 'kept')`,
    ]);
    assert.deepEqual(await noted(a, s), [id('t1'), id('t3')].sort());

    // a savepoint released keeps its note; nothing is noted twice
    const r = await tx(['SAVEPOINT y', `INSERT INTO public.t2 VALUES (3, 'a')`, 'RELEASE SAVEPOINT y', `INSERT INTO public.t2 VALUES (4, 'a')`]);
    assert.deepEqual(await noted(a, r), [id('t2')]);

    // a rolled back transaction leaves no note
    await c.query('BEGIN');
    await c.query(`INSERT INTO public.t1 VALUES (9, 'gone')`);
    const { rows } = await c.query<{ x: string }>('SELECT pg_current_xact_id()::text AS x');
    await c.query('ROLLBACK');
    assert.deepEqual(await noted(a, rows[0].x), []);
  } finally {
    await c.end();
  }
});

test('a log trigger dropped by hand: plan shows it, apply makes it again, and the changes made meanwhile replicate', async () => {
  const { a, b, file } = await setup('log_trust');
  await a.query(`INSERT INTO public.t1 VALUES (1, 'first'); INSERT INTO public.t2 VALUES (1, 'first')`);
  await runOnce(file);
  // t2's changes go unnoted from here (its capture still records them in its delta table)
  const trigger = `bucardo_main_${id('t2')}_l`;
  await a.query(`DROP TRIGGER "${trigger}" ON ${delta('t2')}`);
  await a.query(`INSERT INTO public.t2 VALUES (2, 'unnoted')`);
  const plan = await runCli(['plan', '-f', file, '--no-color']);
  assert.match(
    plan.stdout,
    new RegExp(`\\+ trigger ${trigger} on bucardo_main\\.delta_${id('t2')}\\n\\s+capture of public\\.t2 for sync s1, notes in the change index`),
    plan.stdout,
  );
  await applyOk(file);
  // the next run resumes from a watermark taken before that apply: it must not trust the
  // log, which a change noted now (t1's) would make look complete
  await a.query(`INSERT INTO public.t1 VALUES (2, 'noted')`);
  await runOnce(file);
  await assertSame([a, b], TABLES, 'after the log trigger was made again');
  // and from then on the index is complete again
  await a.query(`INSERT INTO public.t2 VALUES (3, 'noted again')`);
  await runOnce(file);
  await assertSame([a, b], TABLES, 'after a change noted by the new trigger');
  // what the only sync consumed is purged, the notes as the deltas
  const left = await a.one<{ n: number }>('SELECT count(*)::int AS n FROM bucardo_main.change_index');
  assert.equal(left.n, 0, 'the consumed notes were purged');
});

test('a table no longer captured: apply drops its notes with its delta table', async () => {
  const { a, b } = await setup('log_forget');
  await a.query(`INSERT INTO public.t1 VALUES (1, 'a'); INSERT INTO public.t3 VALUES (1, 'a')`);
  const count = async (t: string) => (await a.one<{ n: number }>('SELECT count(*)::int AS n FROM bucardo_main.change_index WHERE table_id = $1', [id(t)])).n;
  assert.equal(await count('t3'), 1);
  await applyOk(writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ALL.filter((t) => t !== 'public.t3') })));
  assert.equal(await count('t3'), 0, "t3's notes went with its delta table");
  assert.equal(await count('t1'), 1, "t1's notes stay until a run consumes them");
});

test('a running runner reads the delta tables of the tables the change index names only', async () => {
  const { a, b, file } = await setup('log_reads');
  await a.query(`INSERT INTO public.t1 VALUES (1, 'a'); INSERT INTO public.t2 VALUES (1, 'a')`);
  const runner = spawnCli(['run', '-f', file]);
  try {
    await waitFor(async () => (await b.query('SELECT 1 FROM public.t2 WHERE id = 1')).rowCount === 1, 'the first rows on b');
    // t3's delta table out of the way: a run that looked into every delta table would fail
    await a.query(`ALTER TABLE ${delta('t3')} RENAME TO moved_away`);
    for (let i = 2; i <= 6; i++) {
      await a.query(`INSERT INTO public.t${i % 2 ? 1 : 2} VALUES ($1, 'by the log')`, [i]);
      await waitFor(async () => (await b.query(`SELECT 1 FROM public.t${i % 2 ? 1 : 2} WHERE id = $1`, [i])).rowCount === 1, `row ${i} on b`);
    }
    await a.query(`ALTER TABLE bucardo_main.moved_away RENAME TO ${deltaTableName(id('t3'))}`);
    await a.query(`INSERT INTO public.t3 VALUES (1, 'back')`);
    await waitFor(async () => (await b.query('SELECT 1 FROM public.t3 WHERE id = 1')).rowCount === 1, 't3 on b');
  } finally {
    await runner.stop();
  }
  const failed = await a.one<{ n: number }>(`SELECT count(*)::int AS n FROM bucardo_main.run WHERE error IS NOT NULL`);
  assert.equal(failed.n, 0, `no run failed:\n${runner.output().stdout}`);
  await assertSame([a, b], TABLES);
});
