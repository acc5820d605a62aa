// The kick gate (docs/protocol.md): a capture trigger skips its NOTIFY while the runner is
// busy, and a busy runner may go idle only once no such writer is in flight. With no
// checktime, a missed wake-up would leave a row behind for good: these tests would hang
// in waitFor and fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { useClusters, simpleTopology, writeTopology, waitFor, type TestDb } from '../helpers/env.js';
import { applyOk } from '../helpers/install.js';
import { spawnCli } from '../helpers/cli.js';
import { kickGateKey } from '../../engine/sql/capture.js';

const env = useClusters(['a', 'b']);
const DDL = `CREATE TABLE public.items (id bigint PRIMARY KEY, v text NOT NULL);`;
const [NS, KEY] = kickGateKey('main');

/** True when some session holds the gate exclusively on `db` (the runner, idle). */
async function gateHeld(db: TestDb): Promise<boolean> {
  const r = await db.query(
    `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::int::oid AND objid = $2::int::oid
        AND objsubid = 2 AND mode = 'ExclusiveLock' AND granted`,
    [NS, KEY],
  );
  return r.rows[0].n > 0;
}
const has = async (db: TestDb, id: number) => (await db.query(`SELECT 1 FROM public.items WHERE id = $1`, [id])).rows.length === 1;

test('an idle runner is woken by a commit; a writer that skipped its NOTIFY while the runner was busy is still replicated', async () => {
  const [a, b] = await env.fresh('gate', DDL);
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ['public.items'] })); // no checktime: kicks only
  await applyOk(file);
  const runner = spawnCli(['run', '-f', file]);
  const writer = new pg.Client(a.cluster.clientConfig(a.dbname));
  await writer.connect();
  try {
    await waitFor(() => gateHeld(a), 'the runner to go idle (gate held)');
    await a.query(`INSERT INTO public.items VALUES (1, 'while idle')`);
    await waitFor(() => has(b, 1), 'row 1 (NOTIFY path) on b');

    // keep the runner busy with a stream of commits, then open a transaction while it is
    let streaming = true;
    let next = 1000;
    const stream = (async () => {
      while (streaming) await a.query(`INSERT INTO public.items VALUES ($1, 'stream')`, [next++]);
    })();
    await waitFor(async () => !(await gateHeld(a)) && next > 1050, 'the runner to be busy');
    await writer.query('BEGIN');
    await writer.query(`INSERT INTO public.items VALUES (2, 'in flight across idle')`);
    const mine = await writer.query(`SELECT count(*)::int AS n FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND mode = 'ShareLock'`);
    assert.equal(mine.rows[0].n, 1, 'the trigger took the gate in shared mode, i.e. skipped its NOTIFY');
    streaming = false;
    await stream;
    const last = next - 1;
    await waitFor(() => has(b, last), 'the stream on b');
    // the runner cannot go idle while this writer holds the shared gate
    assert.equal(await gateHeld(a), false);
    await writer.query('COMMIT');
    await waitFor(() => has(b, 2), 'row 2, committed after the runner was busy, on b');
    await waitFor(() => gateHeld(a), 'the runner to go idle again');
    await a.query(`INSERT INTO public.items VALUES (3, 'after')`);
    await waitFor(() => has(b, 3), 'row 3 on b');
  } finally {
    await writer.end().catch(() => {});
    runner.kill('SIGTERM');
    assert.equal((await runner.exited).code, 0, runner.output().stderr);
  }
});
