/**
 * `bucardo status` as people and scripts read it: the table, the JSON (SPEC keys per
 * sync, extras at the top level), the line for a sync no runner runs any more, and a
 * database that cannot be read.
 */
import os from 'node:os';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useClusters, simpleTopology, writeTopology, waitFor } from '../helpers/env.js';
import { applyOk, runOnce, twoSyncTopology } from '../helpers/install.js';
import { runCli, spawnCli } from '../helpers/cli.js';

const env = useClusters(['a', 'b', 'down']);

const DDL = `CREATE TABLE public.items (id bigint PRIMARY KEY, name text NOT NULL);`;
const SPEC_KEYS = ['conflicts_total', 'enabled', 'lag_seconds', 'last_run', 'name', 'pending', 'state'];

async function statusJson(file: string, code = 0) {
  const r = await runCli(['status', '-f', file, '--format', 'json']);
  assert.equal(r.code, code, r.out);
  return JSON.parse(r.stdout);
}

test('status: a table and JSON after a run; a stale line once no runner ran the sync for longer than its checktime allows; gone when a runner runs it', async () => {
  const [a, b] = await env.fresh('status', DDL, ['a', 'b']);
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ['public.items'], sync: { checktime: '1s' } }));
  await applyOk(file);
  await a.query(`INSERT INTO public.items SELECT i, 'x' FROM generate_series(1, 42) i`);
  await runOnce(file);

  const j = await statusJson(file);
  assert.equal(j.format_version, '1');
  assert.deepEqual(Object.keys(j.syncs[0]).sort(), SPEC_KEYS);
  assert.deepEqual(Object.keys(j).sort(), ['format_version', 'runners', 'stale', 'syncs', 'unreadable']);
  assert.equal(j.syncs[0].state, 'idle');
  assert.equal(j.syncs[0].last_run.rows, 42);
  assert.equal(j.syncs[0].pending, 0);
  assert.equal(j.syncs[0].lag_seconds, 0);
  assert.deepEqual(j.unreadable, []);
  // the run --once that moved the rows is gone: it ran the sync last, holds nothing, is not connected
  assert.equal(j.runners.length, 1);
  assert.equal(j.runners[0].sync, 's1');
  assert.equal(j.runners[0].holding, null);
  assert.equal(j.runners[0].last_run_by.host, os.hostname());
  assert.ok(Number.isInteger(j.runners[0].last_run_by.pid) && j.runners[0].last_run_by.pid !== process.pid);
  assert.deepEqual(j.runners[0].connected, []);

  const t = await runCli(['status', '-f', file]);
  assert.equal(t.code, 0, t.out);
  const [head, row] = t.stdout.split('\n');
  assert.match(head, /^SYNC\s+STATE\s+LAST RUN\s+AGE\s+ROWS\s+CONFLICTS\s+PENDING\s+LAG\s+LAST ERROR$/);
  assert.match(row, /^s1\s+idle\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+\S+ ago\s+42\s+0\s+0\s+0s\s+-$/);
  assert.match(t.stdout, new RegExp(`^sync s1: last run by ${os.hostname()}:${j.runners[0].last_run_by.pid}$`, 'm'));

  // nothing runs it any more: after 2 x checktime + 10 s the sync is stale, in both formats
  const stale = await waitFor(
    async () => {
      const s = await statusJson(file);
      return s.stale.length ? s : null;
    },
    'the sync to be reported stale',
    30_000,
    500,
  );
  assert.equal(stale!.stale[0].sync, 's1');
  assert.equal(stale!.stale[0].checktime_seconds, 1);
  assert.ok(stale!.stale[0].seconds_since >= 12, JSON.stringify(stale!.stale));
  assert.equal(stale!.syncs[0].state, 'idle', 'stale is not a state of its own: the SPEC keys stay as they are');
  const t2 = await runCli(['status', '-f', file]);
  assert.equal(t2.code, 0, t2.out);
  assert.match(t2.stdout, /^sync s1: no run for \d+s although checktime is 1s — is `bucardo run` running\?$/m);

  // a runner that runs it (idle runs every second leave no row, only activity): not stale
  const runner = spawnCli(['run', '-f', file]);
  try {
    await waitFor(async () => (await statusJson(file)).stale.length === 0, 'the stale line to go once a runner runs');
    const t3 = await runCli(['status', '-f', file]);
    assert.doesNotMatch(t3.stdout, /is `bucardo run` running/);
  } finally {
    runner.kill('SIGTERM');
    assert.equal((await runner.exited).code, 0);
  }
});

test('status: a sync that never ran although it has a checktime says so', async () => {
  const [a, b] = await env.fresh('status_never', DDL, ['a', 'b']);
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ['public.items'], sync: { checktime: '30s' } }));
  await applyOk(file);
  const j = await statusJson(file);
  assert.equal(j.syncs[0].state, 'never_run');
  assert.deepEqual(j.stale, [{ sync: 's1', checktime_seconds: 30, last_activity: null, seconds_since: null }]);
  const t = await runCli(['status', '-f', file]);
  assert.match(t.stdout, /^s1\s+never_run\s+never\s+-\s+-\s+0\s+0\s+0s\s+-$/m);
  assert.match(t.stdout, /^sync s1: never run although checktime is 30s — is `bucardo run` running\?$/m);
});

test('status with an unreachable database: prints what it can, names the database, exits 1', async () => {
  const [a, b, down] = await env.fresh('status_down', DDL);
  const file = twoSyncTopology(a, b, down);
  await applyOk(file);
  await a.query(`INSERT INTO public.items SELECT i, 'x' FROM generate_series(1, 7) i`);
  await runOnce(file);
  await env.cluster('down').stop();
  try {
    const j = await statusJson(file, 1);
    const byName = Object.fromEntries(j.syncs.map((s: { name: string }) => [s.name, s]));
    assert.equal(byName.to_b.state, 'idle');
    assert.equal(byName.to_b.last_run.rows, 7);
    // to_down: its source still answers, so its history and pending are known
    assert.equal(byName.to_down.state, 'idle');
    assert.equal(byName.to_down.pending, 0);
    assert.equal(j.unreadable.length, 1);
    assert.equal(j.unreadable[0].sync, 'to_down');
    assert.equal(j.unreadable[0].database, 'down');
    assert.match(j.unreadable[0].error, /cannot connect to database down/);

    const t = await runCli(['status', '-f', file]);
    assert.equal(t.code, 1, t.out);
    assert.match(t.stdout, /^to_b\s+idle\s/m);
    assert.match(t.stdout, /^to_down\s+idle\s/m);
    assert.match(t.stdout, /^sync to_down: database down could not be read, so what it holds is missing above/m);
    assert.match(t.stderr, /^warning: sync to_down: database down: cannot connect to database down/m);
    assert.doesNotMatch(t.out, /password|\n\s+at /);

    const help = await runCli(['status', '--help']);
    assert.match(help.stdout, /Exit codes: 0 when every database of the syncs shown was read/);
  } finally {
    await env.cluster('down').start();
  }
});
