/**
 * `bucardo run --metrics-port`: the exposition text after a few runs (counters grow,
 * pending and lag per source database), /healthz, and the server closing on SIGTERM.
 * Plus the parts of engine/runner/metrics/registry.ts that need no database (escaping, health rules).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useClusters, simpleTopology, writeTopology, waitFor } from '../helpers/env.js';
import { applyOk } from '../helpers/install.js';
import { runCli, spawnCli } from '../helpers/cli.js';
import { Metrics } from '../../engine/runner/metrics.js';
import { freePort } from '../../cli/demo/clusters.js';

const env = useClusters(['a', 'b']);

const DDL = `CREATE TABLE public.items (id bigint PRIMARY KEY, name text NOT NULL);`;

/** Samples of the exposition text: `name{labels}` -> value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${JSON.stringify(line)}`);
    out.set(m[1], Number(m[2]));
  }
  return out;
}

/** Every sample belongs to a family announced by # TYPE before it; no family twice. */
function assertWellFormed(text: string): void {
  assert.ok(text.endsWith('\n'));
  const typed = new Map<string, string>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (t) {
      assert.ok(!typed.has(t[1]), `family ${t[1]} twice`);
      typed.set(t[1], t[2]);
      continue;
    }
    if (!line || line.startsWith('#')) continue;
    const name = line.split(/[{ ]/)[0];
    const family = typed.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    assert.ok(typed.has(family), `sample ${name} before its # TYPE`);
  }
}

async function scrape(port: number): Promise<{ text: string; s: Map<string, number> }> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  return { text, s: samples(text) };
}

test('run --metrics-port: counters grow over runs, pending and lag per source database, /healthz, closed on SIGTERM', async () => {
  const [a, b] = await env.fresh('metrics', DDL);
  // no autokick and a long checktime: changes stay pending until a kick, so the poller sees them
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ['public.items'], sync: { autokick: false, checktime: '1h' } }));
  await applyOk(file);
  const port = await freePort();
  const runner = spawnCli(['run', '-f', file, '--metrics-port', String(port)]);
  let exited = false;
  try {
    // the catch-up run at start finds nothing: an idle run, and pending 0 once polled
    const first = (await waitFor(async () => {
      const r = await scrape(port);
      return r.s.get('bucardo_runs_total{sync="s1",result="idle"}')! >= 1 && r.s.has('bucardo_pending_changes{sync="s1",database="a"}') ? r : null;
    }, 'the first idle run and poll'))!;
    assertWellFormed(first.text);
    assert.equal(first.s.get('bucardo_up'), 1);
    // the very first run writes the watermark (a run that wrote, with no rows)
    const okRuns = first.s.get('bucardo_runs_total{sync="s1",result="ok"}')!;
    assert.equal(first.s.get('bucardo_rows_total{sync="s1"}'), 0);
    assert.equal(first.s.get('bucardo_lag_seconds{sync="s1",database="a"}'), 0);
    assert.equal(first.s.get('bucardo_source_up{database="a"}'), 1);
    assert.ok(!first.s.has('bucardo_pending_changes{sync="s1",database="b"}'), 'no pending series for a target');

    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(health.status, 200);
    const hb = (await health.json()) as { status: string; syncs: Record<string, string> };
    assert.equal(hb.status, 'ok');
    assert.ok(['idle', 'running'].includes(hb.syncs.s1), JSON.stringify(hb));
    assert.equal((await fetch(`http://127.0.0.1:${port}/nope`)).status, 404);

    // ten changes, not kicked: the poller finds them pending, with a lag that grows
    await a.query(`INSERT INTO public.items SELECT i, 'x' FROM generate_series(1, 10) i`);
    const pending = (await waitFor(
      async () => {
        const r = await scrape(port);
        return r.s.get('bucardo_pending_changes{sync="s1",database="a"}') === 10 ? r : null;
      },
      'pending 10 on a',
      30_000,
      250,
    ))!;
    assert.ok(pending.s.get('bucardo_lag_seconds{sync="s1",database="a"}')! > 0);

    for (const [n, total] of [
      [0, 10],
      [5, 15],
    ]) {
      if (n) await a.query(`INSERT INTO public.items SELECT i, 'y' FROM generate_series(100, 99 + $1::int) i`, [n]);
      const k = await runCli(['kick', 's1', '-f', file, '--wait', '30']);
      assert.equal(k.code, 0, k.out);
      const after = (await waitFor(async () => {
        const r = await scrape(port);
        return r.s.get('bucardo_rows_total{sync="s1"}') === total && r.s.get('bucardo_pending_changes{sync="s1",database="a"}') === 0 ? r : null;
      }, `rows ${total} and nothing pending`))!;
      assertWellFormed(after.text);
      assert.equal(after.s.get('bucardo_table_rows_total{sync="s1",table="public.items"}'), total);
      assert.equal(after.s.get('bucardo_database_rows_total{sync="s1",database="b"}'), total);
      assert.equal(after.s.get('bucardo_runs_total{sync="s1",result="ok"}'), okRuns + (n ? 2 : 1));
      assert.equal(after.s.get('bucardo_lag_seconds{sync="s1",database="a"}'), 0);
      assert.equal(after.s.get('bucardo_errors_total{sync="s1"}'), 0);
      assert.equal(after.s.get('bucardo_conflicts_total{sync="s1"}'), 0);
      assert.equal(after.s.get('bucardo_sync_failing{sync="s1"}'), 0);
      const last = after.s.get('bucardo_last_success_timestamp_seconds{sync="s1"}')!;
      assert.ok(Math.abs(last - Date.now() / 1000) < 60, `last success ${last}`);
      const count = after.s.get('bucardo_run_duration_seconds_count{sync="s1"}')!;
      assert.equal(after.s.get('bucardo_run_duration_seconds_bucket{le="+Inf",sync="s1"}'), count);
      assert.ok(count >= 2);
    }
  } finally {
    runner.kill('SIGTERM');
    const exit = await runner.exited;
    exited = true;
    assert.equal(exit.code, 0, runner.output().stdout + runner.output().stderr);
  }
  assert.ok(exited);
  await assert.rejects(fetch(`http://127.0.0.1:${port}/metrics`), 'the server is closed once the runner exits');
});

test('run --metrics-port with a bad port fails clearly', async () => {
  const [a, b] = await env.fresh('metrics_port', DDL);
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ['public.items'] }));
  const r = await runCli(['run', '-f', file, '--metrics-port', 'http']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--metrics-port http is not a port number/);
});

test('label values are escaped; /healthz rules: 503 when shutting down or when every sync is failing', async () => {
  const m = new Metrics({ topology: 'x"y', runner: 'h:1' });
  const now = new Date();
  const ok = { sync: 's1', runId: 'r', wrote: true, rowsByTable: { 'public."we""ird"': 3 }, rows: 3, conflicts: 0, started: now, finished: now, copied: [] };
  m.record('s1', ok, null);
  m.record('s2', null, new Error('down'));
  m.record('a\\b"c\nd', null, new Error('down'));
  const text = await m.render();
  assert.match(text, /^bucardo_errors_total\{sync="a\\\\b\\"c\\nd"\} 1$/m);
  assert.match(text, /^bucardo_table_rows_total\{sync="s1",table="public\.\\"we\\"\\"ird\\""\} 3$/m);
  assert.match(text, /^bucardo_info\{topology="x\\"y",runner="h:1"\} 1$/m);
  assert.match(text, /^bucardo_runs_total\{sync="s2",result="failed"\} 1$/m);
  assert.deepEqual(m.health(), { code: 200, body: { status: 'ok', syncs: { s1: 'idle', s2: 'failing', 'a\\b"c\nd': 'failing' } } });
  m.record('s1', null, new Error('down too'));
  assert.equal(m.health().code, 503);
  assert.equal(m.health().body.status, 'failing');
  m.record('s1', ok, null);
  assert.equal(m.health().code, 200);
  m.setShuttingDown();
  assert.deepEqual(m.health().body.status, 'shutting_down');
  assert.equal(m.health().code, 503);
  m.setPending('a', new Map([['s1', { n: 4, lag: 1.5 }]]));
  const polled = await m.render();
  assert.match(polled, /^bucardo_pending_changes\{sync="s1",database="a"\} 4$/m);
  assert.match(polled, /^bucardo_lag_seconds\{sync="s1",database="a"\} 1\.5$/m);
  m.setPending('a', null);
  const unreadable = await m.render();
  assert.doesNotMatch(unreadable, /bucardo_pending_changes\{/, 'an unreadable source has no pending series');
  assert.match(unreadable, /^bucardo_source_up\{database="a"\} 0$/m);
});
