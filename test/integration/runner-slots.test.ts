// A runner's connections are bounded (engine/runner/slots.ts): with more syncs than
// --max-connected-syncs, every sync still replicates, and the runner never holds more than
// that many syncs' connections on a database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useClusters, writeTopology, waitFor } from '../helpers/env.js';
import { applyOk } from '../helpers/install.js';
import { spawnCli } from '../helpers/cli.js';

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
