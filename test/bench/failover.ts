/**
 * The `failover` phase (`npm run bench -- --quick --only failover`): two `bucardo run` on
 * one file over a one-way sync A -> B, a steady stream of one-row inserts on A, and the
 * active runner (the one whose run was recorded last) SIGKILLed KILLS times, a new runner
 * started after each kill so that two are always there. The figure is the replication gap
 * of each kill: the longest time from an insert's commit on A to its commit on B (a
 * deferred trigger on B stamps the arrival, both clusters share this machine's clock)
 * among the rows inserted from the kill until the next one; p50 and max over the kills,
 * beside the same gap in a window before the first kill. Every row must arrive once.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type pg from 'pg';
import { runCli } from '../helpers/cli.js';
import { type Env, exec, one } from './measure.js';
import { type Results, median } from './report.js';
import { RunnerProcess } from './runner.js';
import { withDeadline, now, sleep, type Scope } from './scope.js';

const KILLS = 10;
/** Inserts per second on A: a steady stream, well under what one runner keeps up with. */
const RATE = 100;
/** Between kills: the survivor takes over, then the replacement connects. */
const WINDOW_MS = 4_000;
const DB = 'bench_failover';

const A_DDL = `CREATE TABLE fo_events (id bigint PRIMARY KEY, ts_a timestamptz NOT NULL DEFAULT clock_timestamp());`;
/** Arrival at commit on B, like bench_hb's (schema.ts): ENABLE ALWAYS fires under the runner's replica role. */
const B_DDL = `${A_DDL}
CREATE TABLE fo_arrival (id bigint NOT NULL, ts_a timestamptz NOT NULL, ts_b timestamptz NOT NULL, xid xid8 NOT NULL DEFAULT pg_current_xact_id());
CREATE FUNCTION fo_arrive() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  INSERT INTO fo_arrival (id, ts_a, ts_b) VALUES (NEW.id, NEW.ts_a, clock_timestamp());
  RETURN NULL;
END $f$;
CREATE CONSTRAINT TRIGGER fo_arrive AFTER INSERT ON fo_events DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fo_arrive();
ALTER TABLE fo_events ENABLE ALWAYS TRIGGER fo_arrive;`;

export async function failoverPhase(env: Env, res: Results, outDir: string): Promise<void> {
  try {
    await withDeadline('failover', 10 * 60_000, (scope) => measure(env, res, outDir, scope));
  } catch (e) {
    res.lost('failover.gap', 'failover: replication gap per SIGKILL of the active runner', 'ms', e);
  }
}

async function measure(env: Env, res: Results, outDir: string, scope: Scope): Promise<void> {
  await Promise.all([env.A.createDatabase(DB), env.B.createDatabase(DB)]);
  const [ca, cb] = [env.A.clientConfig(DB), env.B.clientConfig(DB)];
  await Promise.all([exec(ca, A_DDL), exec(cb, B_DDL)]);
  const topo = {
    version: 1,
    name: 'benchfo',
    databases: { a: { url: env.A.url(DB) }, b: { url: env.B.url(DB) } },
    relgroups: { fo: { tables: ['public.fo_events'] } },
    syncs: { fo: { relgroup: 'fo', sources: ['a'], targets: ['b'] } },
  };
  const file = path.join(outDir, 'failover.yaml');
  fs.writeFileSync(file, YAML.stringify(topo, { lineWidth: 0 }));
  const applied = await runCli(['apply', '-f', file, '--auto-approve'], { timeout: 120_000 });
  if (applied.code !== 0) throw new Error(`bucardo apply exited ${applied.code}\n${applied.out.slice(-2000)}`);

  let started = 0;
  const runners = new Set<RunnerProcess>();
  const start = () => {
    const r = RunnerProcess.start(`failover-${++started}`, file, outDir);
    runners.add(r);
    return r;
  };
  const writer = await scope.connect(ca);
  scope.defer(() => {
    for (const r of runners) r.child.kill('SIGKILL');
  });
  let stopWriting = false;
  let inserted = 0;
  const writing = (async () => {
    const t0 = now();
    while (!stopWriting && !scope.aborted) {
      await writer.query('INSERT INTO fo_events (id) VALUES ($1)', [inserted + 1]);
      inserted++;
      await sleep(Math.max(0, (t0 + inserted / RATE - now()) * 1000));
    }
  })();

  await Promise.all([connected(ca, start(), scope), connected(ca, start(), scope)]);
  await sleep(WINDOW_MS, scope.signal);
  const kills: number[] = [];
  for (let k = 0; k < KILLS; k++) {
    const active = await activeRunner(ca, runners, scope);
    kills.push(now());
    active.child.kill('SIGKILL');
    await active.exited;
    runners.delete(active);
    await sleep(WINDOW_MS / 2, scope.signal);
    await connected(ca, start(), scope);
    await sleep(WINDOW_MS / 2, scope.signal);
  }
  stopWriting = true;
  await writing;
  const end = now();
  while (!scope.aborted) {
    const got = await one<{ n: number }>(cb, 'SELECT count(DISTINCT id)::int AS n FROM fo_arrival');
    if (got.n >= inserted) break;
    await sleep(200, scope.signal);
  }
  // an id may arrive more than once in one transaction (a first run copies the table, then
  // applies its pending keys), never in two: that would be a change applied twice
  const check = await one<{ n: number; d: number; twice: number }>(
    cb,
    `SELECT count(*)::int AS n, count(DISTINCT id)::int AS d,
       (SELECT count(*)::int FROM (SELECT id FROM fo_arrival GROUP BY id HAVING count(DISTINCT xid) > 1) t) AS twice
     FROM fo_events`,
  );
  if (check.n !== inserted || check.d !== inserted || check.twice) {
    throw new Error(`B holds ${check.n} rows (${check.d} ids) for ${inserted} inserts; ${check.twice} ids arrived in two transactions`);
  }
  const bounds = [...kills, end];
  const gaps: number[] = [];
  for (let k = 0; k < KILLS; k++) gaps.push(await maxLagMs(cb, bounds[k], bounds[k + 1]));
  const before = await maxLagMs(cb, kills[0] - WINDOW_MS / 1000, kills[0]);
  const sorted = [...gaps].sort((x, y) => x - y);
  res.add({
    id: 'failover.gap',
    label: `failover: replication gap per SIGKILL of the active runner (${KILLS} kills, ${RATE} inserts/s)`,
    value: median(gaps),
    unit: 'ms',
    status: 'ok',
    note: `p50; max ${Math.round(sorted[sorted.length - 1])} ms; before the first kill ${Math.round(before)} ms; ${inserted} rows, each on B once`,
    extra: { gaps, before, inserted },
  });
  await runCli(['destroy', '-f', file, '--auto-approve'], { timeout: 120_000 });
}

/** The runner of the latest recorded run (its `runner` is host:pid), among `runners`. */
async function activeRunner(ca: pg.ClientConfig, runners: Set<RunnerProcess>, scope: Scope): Promise<RunnerProcess> {
  for (;;) {
    if (scope.aborted) throw new Error('phase ended');
    const last = await one<{ runner: string | null }>(ca, `SELECT runner FROM bucardo_benchfo.run WHERE sync = 'fo' ORDER BY started DESC LIMIT 1`);
    const pid = Number(last?.runner?.slice(last.runner.lastIndexOf(':') + 1));
    const r = [...runners].find((x) => x.pid === pid);
    if (r) return r;
    await sleep(100);
  }
}

/** Resolves once `r` has a connection open for the sync on A (its application_name ends in its pid and host). */
async function connected(ca: pg.ClientConfig, r: RunnerProcess, scope: Scope): Promise<void> {
  for (;;) {
    if (scope.aborted) throw new Error('phase ended');
    if (!r.alive) throw new Error(`runner ${r.label} died:\n${r.tail()}`);
    const n = await one<{ n: number }>(ca, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE $1`, [`bucardo:fo:%:${r.pid}@%`]);
    if (n.n > 0) return;
    await sleep(100);
  }
}

/** The longest commit-to-commit lag (ms) of the rows inserted on A in [from, to) (epoch seconds). */
async function maxLagMs(cb: pg.ClientConfig, from: number, to: number): Promise<number> {
  const r = await one<{ ms: number | null }>(
    cb,
    `SELECT max(extract(epoch FROM ts_b - ts_a) * 1000)::float8 AS ms FROM fo_arrival WHERE ts_a >= to_timestamp($1) AND ts_a < to_timestamp($2)`,
    [from, to],
  );
  return r.ms ?? 0;
}
