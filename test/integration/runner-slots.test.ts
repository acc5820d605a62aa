// A runner's connections are bounded (engine/runner/slots.ts): with more syncs than
// --max-connected-syncs, every sync still replicates, and the runner never holds more than
// that many syncs' connections on a database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useClusters, writeTopology, waitFor } from '../helpers/env.js';
import { applyOk } from '../helpers/install.js';
import { spawnCli } from '../helpers/cli.js';
import { freePort } from '../../cli/demo/clusters.js';

const env = useClusters(['a', 'b']);
const SYNCS = 5;

test(`${SYNCS} syncs with --max-connected-syncs 2: all replicate, at most 2 syncs hold connections`, async () => {
  const ddl = Array.from({ length: SYNCS }, (_, i) => `CREATE TABLE public.t${i} (id integer PRIMARY KEY, v text);`).join('\n');
  const [a, b] = await env.fresh('slots', ddl);
  const file = writeTopology({
    version: 1,
    databases: { a: { url: a.url }, b: { url: b.url } },
    relgroups: Object.fromEntries(Array.from({ length: SYNCS }, (_, i) => [`g${i}`, { tables: [`public.t${i}`] }])),
    syncs: Object.fromEntries(Array.from({ length: SYNCS }, (_, i) => [`s${i}`, { relgroup: `g${i}`, sources: ['a'], targets: ['b'], checktime: '1s' }])),
  });
  await applyOk(file);
  const runner = spawnCli(['run', '-f', file, '--max-connected-syncs', '2']);
  // syncs holding connections on a: each holds a write connection there while it has a slot
  const holders = async () =>
    (
      await a.query(
        `SELECT count(DISTINCT split_part(application_name, ':', 2))::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'bucardo:%:write%'`,
      )
    ).rows[0].n as number;
  let most = 0;
  try {
    for (let round = 1; round <= 3; round++) {
      for (let i = 0; i < SYNCS; i++) await a.query(`INSERT INTO public.t${i} VALUES ($1, 'r')`, [round]);
      await waitFor(
        async () => {
          most = Math.max(most, await holders());
          for (let i = 0; i < SYNCS; i++) if ((await b.query(`SELECT 1 FROM public.t${i} WHERE id = $1`, [round])).rowCount !== 1) return false;
          return true;
        },
        `round ${round} on every table of b`,
        60_000,
      );
    }
    assert.ok(most >= 1 && most <= 2, `syncs holding connections on a at once: ${most}\n${runner.output().stdout}`);
    assert.equal(runner.child.exitCode, null, runner.output().stderr);
  } finally {
    runner.kill('SIGTERM');
    await runner.exited;
  }
});

test('--max-connected-syncs takes a positive count', async () => {
  const [a, b] = await env.fresh('slots_flag', 'CREATE TABLE public.t (id integer PRIMARY KEY);');
  const file = writeTopology({
    version: 1,
    databases: { a: { url: a.url }, b: { url: b.url } },
    relgroups: { g: { tables: ['public.t'] } },
    syncs: { s: { relgroup: 'g', sources: ['a'], targets: ['b'] } },
  });
  const r = spawnCli(['run', '-f', file, '--max-connected-syncs', '0']);
  const exit = await r.exited;
  assert.equal(exit.code, 1);
  assert.match(r.output().stderr, /--max-connected-syncs/);
});

test('a change wakes only the syncs that hold its table, not every sync reading the database', async () => {
  const [a, b] = await env.fresh('wake', 'CREATE TABLE public.hot (id integer PRIMARY KEY); CREATE TABLE public.cold (id integer PRIMARY KEY);');
  const file = writeTopology({
    version: 1,
    databases: { a: { url: a.url }, b: { url: b.url } },
    relgroups: { h: { tables: ['public.hot'] }, c: { tables: ['public.cold'] } },
    syncs: { hot: { relgroup: 'h', sources: ['a'], targets: ['b'] }, cold: { relgroup: 'c', sources: ['a'], targets: ['b'] } },
  });
  await applyOk(file);
  const port = await freePort();
  const runner = spawnCli(['run', '-f', file, '--metrics-port', String(port)]);
  // runs of a sync that finished, of any result, from the runner's own metrics
  const runs = async (sync: string) => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    let n = 0;
    for (const m of text.matchAll(new RegExp(`^bucardo_runs_total\\{[^}]*sync="${sync}"[^}]*\\} (\\d+)`, 'gm'))) n += Number(m[1]);
    return n;
  };
  try {
    await waitFor(async () => (await runs('hot')) >= 1 && (await runs('cold')) >= 1, 'the first run of both syncs').catch(async (e) => {
      throw new Error(`${e.message}\n${runner.output().stdout}${runner.output().stderr}`);
    });
    // no checktime: only a change, a kick, or the few polls while a kick gate is not
    // held yet (worker.ts afterDone) run an idle sync. Ten changes of public.hot woke
    // sync cold ten times before; now at most those polls remain.
    const before = await runs('cold');
    for (let i = 1; i <= 10; i++) {
      await a.query('INSERT INTO public.hot VALUES ($1)', [i]);
      await waitFor(async () => (await b.query('SELECT 1 FROM public.hot WHERE id = $1', [i])).rowCount === 1, `row ${i} on b`);
    }
    const woke = (await runs('cold')) - before;
    assert.ok(woke < 5, `ten changes of public.hot ran sync cold ${woke} times`);
    await a.query('INSERT INTO public.cold VALUES (1)');
    await waitFor(async () => (await b.query('SELECT 1 FROM public.cold WHERE id = 1')).rowCount === 1, 'the cold row on b');
  } finally {
    runner.kill('SIGTERM');
    await runner.exited;
  }
});
