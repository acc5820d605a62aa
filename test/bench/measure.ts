/**
 * The measurements, each a port of its counterpart in ../shared/bench/peers/measure.sh
 * with the same definitions:
 * - the COPY limit: `COPY pgbench_accounts TO STDOUT` on A streamed into `COPY ... FROM
 *   STDIN` on B (into the keyed table; and unindexed, then ADD PRIMARY KEY);
 * - M1: rows/s from the start of the burst on A until B has all of it (a heartbeat inserted
 *   after the burst is visible on B and sum(abalance) over the burst's keys is as expected);
 * - M2: lag = B's commit stamp (deferred trigger) minus A's insert time of a heartbeat
 *   written every 100 ms during a fixed-rate TPC-B-like load;
 * - M3: unthrottled TPC-B-like TPS on A, 4 clients.
 * Every wait is bounded and raced against the runner's death.
 */
import pg from 'pg';
import { pipeline } from 'node:stream/promises';
import { to as copyTo, from as copyFrom } from 'pg-copy-streams';
import type { Cluster } from '../../cli/demo/clusters.js';
import type { BenchConfig } from './config.js';
import { type RunnerProcess, type RunLine, cpuSeconds } from './runner.js';
import { type Scope, now, sleep } from './scope.js';
import { tpcbLoad, oneRowBurst, type LoadResult } from './load.js';
import { FINGERPRINT_SQL } from './schema.js';

export const DB = 'bench';

export interface Env {
  cfg: BenchConfig;
  A: Cluster;
  B: Cluster;
  a: pg.ClientConfig;
  b: pg.ClientConfig;
}

export async function one<T = Record<string, unknown>>(cfg: pg.ClientConfig, sql: string, params: unknown[] = []): Promise<T> {
  const c = new pg.Client(cfg);
  c.on('error', () => {});
  await c.connect();
  try {
    const r = await c.query(sql, params);
    return (Array.isArray(r) ? r[r.length - 1] : r).rows[0] as T;
  } finally {
    await c.end().catch(() => {});
  }
}

/** Several statements in one simple-protocol round trip (DDL, set-up). */
export async function exec(cfg: pg.ClientConfig, sql: string): Promise<void> {
  await one(cfg, sql);
}

/** A wait that fails at once if the runner dies meanwhile. */
function raceRunner<T>(p: Promise<T>, runner: RunnerProcess | null): Promise<T> {
  return runner ? Promise.race([p, runner.died()]) : p;
}

/** The COPY pipe: one table from `from` into `to`; seconds. */
export async function copyPipe(scope: Scope, from: pg.ClientConfig, to: pg.ClientConfig, table: string): Promise<number> {
  const src = await scope.connect(from);
  const dst = await scope.connect(to);
  const t0 = now();
  await pipeline(src.query(copyTo(`COPY ${table} TO STDOUT`)), dst.query(copyFrom(`COPY ${table} FROM STDIN`)));
  return now() - t0;
}

export interface Limit {
  rows: number;
  keyedS: number;
  keyedRowsPerS: number;
  unindexedS: number;
  unindexedPlusPkS: number;
  reps: { keyedS: number; unindexedS: number; unindexedPlusPkS: number }[];
}

/** Heartbeat run ids: from A's sequence; negative for heartbeats written on B (two sources). */
async function newRunId(env: Env): Promise<number> {
  return Number((await one<{ n: string }>(env.a, `SELECT nextval('benchctl.run_id_seq') AS n`)).n);
}

/**
 * measure.sh wait_caught_up: a heartbeat on `from`, waited for on `to`. With two sources,
 * both directions.
 */
export async function waitCaughtUp(env: Env, scope: Scope, runner: RunnerProcess | null, timeoutS: number, both = false): Promise<number> {
  const t0 = now();
  const dirs: [pg.ClientConfig, pg.ClientConfig, number][] = [[env.a, env.b, 1]];
  if (both) dirs.push([env.b, env.a, -1]);
  await Promise.all(
    dirs.map(async ([from, to, sign]) => {
      const run = sign * (await newRunId(env));
      const poll = await scope.connect(to);
      await one(from, `INSERT INTO bench_hb (run_id, seq) VALUES ($1, 0)`, [run]);
      const r = await raceRunner(poll.query<{ t: number }>(`SELECT benchctl.wait_for($1, 0, $2) AS t`, [run, timeoutS]), runner);
      if (r.rows[0].t === -1) throw new Error(`not caught up within ${timeoutS} s`);
    }),
  );
  return now() - t0;
}

export async function fingerprints(env: Env): Promise<{ a: string; b: string; same: boolean }> {
  const [fa, fb] = await Promise.all([one<{ f: string }>(env.a, FINGERPRINT_SQL), one<{ f: string }>(env.b, FINGERPRINT_SQL)]);
  return { a: fa.f, b: fb.f, same: fa.f === fb.f };
}

/** Top statements of pg_stat_statements on a database (after a reset at the start of a measurement). */
export async function topStatements(
  cfg: pg.ClientConfig,
  n = 8,
  database?: string,
): Promise<{ calls: number; total_ms: number; mean_ms: number; rows: number; query: string }[]> {
  const c = new pg.Client(cfg);
  c.on('error', () => {});
  await c.connect();
  try {
    const r = await c.query(
      `SELECT calls::int, round(total_exec_time::numeric, 1)::float8 AS total_ms, round(mean_exec_time::numeric, 2)::float8 AS mean_ms, rows::bigint::float8 AS rows,
              left(regexp_replace(query, '\\s+', ' ', 'g'), 300) AS query
         FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
        WHERE d.datname = coalesce($2, current_database()) AND query NOT LIKE '%pg_stat_statements%' AND query NOT LIKE '%benchctl.wait_%'
        ORDER BY total_exec_time DESC LIMIT $1`,
      [n, database ?? null],
    );
    return r.rows;
  } catch {
    return [];
  } finally {
    await c.end().catch(() => {});
  }
}

export async function resetStatements(env: Env): Promise<void> {
  await Promise.all([env.a, env.b].map((c) => one(c, 'SELECT pg_stat_statements_reset()').catch(() => {})));
}

/**
 * CPU seconds spent by the runner process and by the PostgreSQL backends serving it
 * (application_name bucardo:*) on A and B, between start() and stop(): with 2 cores
 * shared by A, B, the load and the runner, this is what the runner takes from the source.
 */
export async function runnerCpu(env: Env, runner: RunnerProcess): Promise<{ stop(): Promise<Record<string, number>> }> {
  const backends = async () => {
    const rows = await Promise.all(
      [env.a, env.b].map((c) =>
        one<{ p: number[] }>(c, `SELECT coalesce(array_agg(pid), '{}') AS p FROM pg_stat_activity WHERE application_name LIKE 'bucardo:%'`).catch(() => ({
          p: [],
        })),
      ),
    );
    return { a: rows[0].p, b: rows[1].p };
  };
  const b0 = await backends();
  const at = (pids: number[]) => new Map(pids.map((p) => [p, cpuSeconds(p) ?? 0]));
  const startA = at(b0.a);
  const startB = at(b0.b);
  const r0 = cpuSeconds(runner.pid) ?? 0;
  const t0 = now();
  return {
    async stop() {
      const b1 = await backends();
      const used = (pids: number[], start: Map<number, number>) => pids.reduce((s, p) => s + Math.max(0, (cpuSeconds(p) ?? 0) - (start.get(p) ?? 0)), 0);
      const wall = now() - t0;
      const runnerS = (cpuSeconds(runner.pid) ?? r0) - r0;
      const aS = used(b1.a, startA);
      const bS = used(b1.b, startB);
      return { wallS: round(wall), runnerNodeS: round(runnerS), backendsAS: round(aS), backendsBS: round(bS), coresUsed: round((runnerS + aS + bS) / wall) };
    },
  };
}
const round = (x: number) => Math.round(x * 100) / 100;

/** Summary of the runner's runs during a measurement (the per-run profile). */
export function summarizeRuns(lines: RunLine[]): Record<string, unknown> {
  const runs = lines.filter((l) => l.event === 'run');
  const d = runs.map((r) => r.duration_ms ?? 0);
  return {
    runs: runs.length,
    rows: runs.reduce((s, r) => s + (r.rows ?? 0), 0),
    conflicts: runs.reduce((s, r) => s + (r.conflicts ?? 0), 0),
    totalRunMs: d.reduce((a, b) => a + b, 0),
    maxRunMs: d.length ? Math.max(...d) : 0,
    largest: runs
      .sort((x, y) => (y.rows ?? 0) - (x.rows ?? 0))
      .slice(0, 3)
      .map((r) => ({ rows: r.rows, ms: r.duration_ms, by_table: r.rows_by_table })),
    failed: lines
      .filter((l) => l.event === 'run_failed')
      .map((l) => l.error)
      .slice(0, 3),
  };
}

export interface BurstResult {
  rows: number;
  totalS: number;
  sourceS: number;
  rowsPerS: number;
  sourceRowsPerS: number;
  load?: LoadResult;
  loadOnB?: LoadResult;
  runs: Record<string, unknown>;
  cpu: Record<string, number>;
}

/**
 * M1 (and M5's variant with `mm`): `rows` keys of pgbench_accounts get a run-specific
 * abalance (the "marker"), in one transaction or as one-row transactions from 4 clients;
 * with `mm`, B sets the same marker on every tenth of those keys at the same time (so
 * whichever source wins a conflict, the end state is the same). Done when a heartbeat
 * inserted on A after the burst is visible on B and every key shows the marker there.
 * (measure.sh adds 1 and checks a sum: the same for one source, but with two sources a
 * key incremented on both sides legitimately ends +1 or +2 depending on the interleaving.)
 */
export async function burst(
  env: Env,
  scope: Scope,
  runner: RunnerProcess,
  o: { rows: number; variant: 'single' | 'clients'; mm: boolean; timeoutS: number },
): Promise<BurstResult> {
  await waitCaughtUp(env, scope, runner, 600, o.mm);
  const run = await newRunId(env);
  const marker = 1_500_000_000 + run;
  const poll = await scope.connect(env.b);
  const polled = poll.query<{ t: number }>(`SELECT benchctl.wait_marker($1, 1, $2, $3, $4) AS t`, [run, marker, o.timeoutS, o.rows]);
  polled.catch(() => {});
  await sleep(300); // as measure.sh: let the poller start
  const from = runner.lines.length;
  const cpu = await runnerCpu(env, runner);
  const t0 = now();
  let load: LoadResult | undefined;
  let loadOnB: LoadResult | undefined;
  if (o.variant === 'single') {
    const ca = await scope.connect(env.a);
    const onA = ca.query(`UPDATE pgbench_accounts SET abalance = $2 WHERE aid <= $1`, [o.rows, marker]);
    if (o.mm) {
      const cb = await scope.connect(env.b);
      await Promise.all([onA, cb.query(`UPDATE pgbench_accounts SET abalance = $2 WHERE aid <= $1 AND aid % 10 = 0`, [o.rows, marker])]);
    } else {
      await onA;
    }
  } else {
    const onA = oneRowBurst(scope, env.a, { clients: 4, n: o.rows, value: marker });
    if (o.mm)
      [load, loadOnB] = await Promise.all([onA, oneRowBurst(scope, env.b, { clients: 1, n: Math.floor(o.rows / 10), first: 10, step: 10, value: marker })]);
    else load = await onA;
  }
  const t1 = now();
  await one(env.a, `INSERT INTO bench_hb (run_id, seq) VALUES ($1, 1)`, [run]);
  const t2 = (await raceRunner(polled, runner)).rows[0].t;
  if (t2 === -1) {
    const cnt = `SELECT count(*)::text AS n FROM pgbench_accounts WHERE aid <= $1 AND abalance = $2`;
    const [na, nb] = await Promise.all([one<{ n: string }>(env.a, cnt, [o.rows, marker]), one<{ n: string }>(env.b, cnt, [o.rows, marker])]);
    throw new Error(
      `B did not show the ${o.rows} rows within ${o.timeoutS} s: marked rows A ${na.n}, B ${nb.n} (runner log: ${JSON.stringify(summarizeRuns(runner.lines.slice(from)))})`,
    );
  }
  await sleep(200); // the run's log line follows its commit
  return {
    rows: o.rows,
    totalS: t2 - t0,
    sourceS: t1 - t0,
    rowsPerS: o.rows / (t2 - t0),
    sourceRowsPerS: o.rows / (t1 - t0),
    load,
    loadOnB,
    runs: summarizeRuns(runner.lines.slice(from)),
    cpu: await cpu.stop(),
  };
}

export interface LagResult {
  heartbeats: number;
  expected: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  load: LoadResult;
  loadOnB?: LoadResult;
  runs: Record<string, unknown>;
  cpu: Record<string, number>;
}

/**
 * M2 (and M5's variant): heartbeats every 100 ms on A for `secs` (the DO loop of measure.sh,
 * committing each one) during a TPC-B-like load at `rate` on A; with `mm`, B takes the same
 * load at a tenth of the rate.
 */
export async function lag(env: Env, scope: Scope, runner: RunnerProcess, o: { rate: number; secs: number; mm: boolean }): Promise<LagResult> {
  await waitCaughtUp(env, scope, runner, 600, o.mm);
  const run = await newRunId(env);
  const n = o.secs * 10;
  const hbc = await scope.connect(env.a);
  const from = runner.lines.length;
  const cpu = await runnerCpu(env, runner);
  const hb = hbc.query(`DO $$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN
    FOR i IN 1..${n} LOOP
      INSERT INTO public.bench_hb (run_id, seq) VALUES (${run}, i); COMMIT;
      PERFORM pg_sleep(greatest(0, extract(epoch FROM (t0 + i * interval '100 ms') - clock_timestamp())));
    END LOOP; END $$`);
  const loads = [tpcbLoad(scope, env.a, { clients: 4, rate: o.rate, seconds: o.secs, scale: env.cfg.scale })];
  if (o.mm) loads.push(tpcbLoad(scope, env.b, { clients: 2, rate: o.rate / 10, seconds: o.secs, scale: env.cfg.scale }));
  const [load, loadOnB] = await raceRunner(Promise.all(loads), runner);
  await raceRunner(hb, runner);
  const cpuUsed = await cpu.stop();
  const poll = await scope.connect(env.b);
  const t = (await raceRunner(poll.query<{ t: number }>(`SELECT benchctl.wait_for($1, $2, 300) AS t`, [run, n]), runner)).rows[0].t;
  const s = await one<{ cnt: string; p50: number; p95: number; p99: number; mx: number }>(
    env.b,
    `SELECT count(*)::text AS cnt,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM ts_b - ts_a)) * 1000 AS p50,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM ts_b - ts_a)) * 1000 AS p95,
            percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM ts_b - ts_a)) * 1000 AS p99,
            max(extract(epoch FROM ts_b - ts_a)) * 1000 AS mx
       FROM benchctl.hb_arrival WHERE run_id = $1`,
    [run],
  );
  const res: LagResult = {
    heartbeats: Number(s.cnt),
    expected: n,
    p50: Number(s.p50),
    p95: Number(s.p95),
    p99: Number(s.p99),
    max: Number(s.mx),
    load,
    loadOnB,
    runs: summarizeRuns(runner.lines.slice(from)),
    cpu: cpuUsed,
  };
  if (t === -1)
    throw Object.assign(new Error(`the last heartbeat did not reach B within 300 s after the load (${res.heartbeats}/${n} arrived)`), { partial: res });
  return res;
}

/** M3: VACUUM ANALYZE + CHECKPOINT on A (caught up before and after, as measure.sh), then unthrottled TPC-B-like load. */
export async function sourceTps(env: Env, scope: Scope, runner: RunnerProcess | null): Promise<LoadResult & { runnerCpu?: Record<string, number> }> {
  if (runner) await waitCaughtUp(env, scope, runner, 600);
  await exec(env.a, 'VACUUM ANALYZE pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history');
  await exec(env.a, 'CHECKPOINT');
  if (runner) await waitCaughtUp(env, scope, runner, 600);
  const cpu = runner ? await runnerCpu(env, runner) : null;
  const load = await raceRunner(tpcbLoad(scope, env.a, { clients: 4, rate: null, seconds: env.cfg.m3Secs, scale: env.cfg.scale }), runner);
  return { ...load, runnerCpu: await cpu?.stop() };
}

/** count, sum and a content hash of pgbench_accounts, for M4's no-lost-write check. */
export const ACCOUNTS_CHECK_SQL = `SELECT count(*)::text || '/' || sum(abalance)::text || '/' || sum(hashtext(t::text)::bigint)::text AS f FROM pgbench_accounts t`;
