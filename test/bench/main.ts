/**
 * `npm run bench [-- --quick]`: the peers' workloads (issue 5; ../shared/bench/peers/)
 * against bucardo, on two embedded clusters with the peers' settings, every figure beside
 * the COPY limit measured in the same run. Phases, in order:
 *
 *   set-up      clusters A and B, pgbench data on A in SQL, schema on B
 *   limit       COPY pipe A -> B of pgbench_accounts (keyed; unindexed + ADD PRIMARY KEY); leaves B loaded
 *   m3 (none)   TPC-B-like TPS on A with no capture
 *   one-way     apply A -> B, `bucardo run` child: M3 (capture), M1 x2, M2 x rates, RSS at two delta sizes; destroy
 *   m3 (none)   again, after destroy (the "none" figure is the median of before and after)
 *   m5          apply A <-> B (conflict latest), runner: M1 x2 and M2 with B writing 10% too; destroy
 *   m4          onetimecopy of pgbench_accounts into empty keyed databases while A takes writes; verify
 *   lr          native logical replication between fresh databases of A and B: M1 one transaction (native.ts)
 *   custom      100k conflicts settled by latest, then by custom handlers picking and merging (custom.ts)
 *   transform   100k updated rows one-way: plain, identity and masking transforms, a row filter (transform.ts)
 *   failover    two runners, a steady insert stream, the active one SIGKILLed 10 times: the replication gap per kill (failover.ts)
 *   scale       1,000 tables in 1 sync and in 50 syncs: plan, apply, lag, idle CPU, memory, connections (scale.ts)
 *   targets     M1 into a SQLite target beside better-sqlite3's own bulk load of the same rows (targets.ts),
 *               into MariaDB beside mysql2's (targets-mariadb.ts) and into Redis beside node-redis's pipelined HSET (targets-redis.ts)
 *
 * Every phase has a deadline and ends as "timed out" or "failed" (with the runner's stderr
 * tail) instead of hanging; clusters and runner children are stopped on every exit path.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { startClusters, type ClusterGroup } from '../../cli/demo/clusters.js';
import { runCli } from '../helpers/cli.js';
import { parseArgs, CLUSTER_SETTINGS } from './config.js';
import { TABLES, TABLES_DDL, dataSql, KEYS_DDL, BENCHCTL_DDL, ARRIVAL_TRIGGER_DDL } from './schema.js';
import { withDeadline, now, sleep } from './scope.js';
import { RunnerProcess, killAllRunners, rssSampler } from './runner.js';
import { Results, median } from './report.js';
import { tpcbLoad, oneRowBurst } from './load.js';
import { nativeLr } from './native.js';
import { customPhase } from './custom.js';
import { transformCost } from './transform.js';
import { failoverPhase } from './failover.js';
import { scalePhase } from './scale.js';
import { targetsPhase } from './targets.js';
import {
  DB,
  type Env,
  type Limit,
  one,
  exec,
  copyPipe,
  waitCaughtUp,
  fingerprints,
  burst,
  lag,
  sourceTps,
  resetStatements,
  topStatements,
  summarizeRuns,
  ACCOUNTS_CHECK_SQL,
} from './measure.js';

const PEERS = {
  limit: { bucardo: '226k rows/s (4.42 s; unindexed 3.19 s)', lr: 'same' },
  m1single: { bucardo: '10.7k (0.047x)', lr: '28.6k (0.13x)', target: '>= 0.14x limit' },
  m1clients: { bucardo: '837', lr: '2.7k', target: '>= 2,511 rows/s (3x Bucardo)' },
  m2: {
    200: { bucardo: '2,357 / 3,151 / 3,319 ms', lr: '1.5 / 9.3 / 53 ms' },
    500: { bucardo: '3,848 / 5,096 / 5,607 ms', lr: '3.5 / 14.8 / 87 ms' },
  } as Record<number, { bucardo: string; lr: string }>,
  m3: { bucardo: '0.42x (358 / 852 tps)', lr: '~1.0x (1,092 tps)', target: '>= 0.7x' },
  m4: { bucardo: '4.80 s (0.92x); 3.09 s rebuild_index (1.43x)', lr: '10.8 s (0.41x)', target: '>= 1.4x pipe speed' },
  rss: { bucardo: '155 MiB (all processes)', lr: 'in-server', target: '<= 200 MiB, flat' },
  m5single: { bucardo: '10.4k (2 sources)', lr: '' },
  m5clients: { bucardo: '819 (2 sources)', lr: '' },
  m5lag: { 500: { bucardo: '3,074 / 4,174 / 4,501 ms', lr: '' } } as Record<number, { bucardo: string; lr: string }>,
};

let group: ClusterGroup | null = null;
let shuttingDown = false;

async function shutdown(code: number, why: string): Promise<never> {
  if (!shuttingDown) {
    shuttingDown = true;
    console.error(`[bench] ${why}: stopping the runner and the clusters`);
    killAllRunners();
    await Promise.race([group?.stopAll(), sleep(60_000)]);
  }
  process.exit(code);
}

async function main(): Promise<void> {
  const cfg = parseArgs(process.argv.slice(2));
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').replace(/Z$/, '');
  const outDir = path.resolve(cfg.outDir, `${stamp}${cfg.quick ? '-quick' : ''}`);
  fs.mkdirSync(outDir, { recursive: true });
  const res = new Results();
  res.config = { ...cfg, phases: [...cfg.phases], outDir, clusterSettings: CLUSTER_SETTINGS };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => void shutdown(130, `got ${sig}`));
  process.on('uncaughtException', (e) => void shutdown(1, `uncaught ${e.stack ?? e}`));
  process.on('unhandledRejection', (e) => void shutdown(1, `unhandled rejection ${(e as Error)?.stack ?? e}`));

  const t0 = now();
  console.log(`[bench] ${cfg.quick ? 'quick' : 'full'} run: scale ${cfg.scale}, phases ${[...cfg.phases].join(',')}; output ${outDir}`);
  try {
    group = await startClusters(['a', 'b'], {
      settings: { ...CLUSTER_SETTINGS, ...(cfg.trackAll ? { 'pg_stat_statements.track': 'all' } : {}) },
    });
    const [A, B] = [group.byName.a, group.byName.b];
    await Promise.all([A.createDatabase(DB), B.createDatabase(DB)]);
    const env: Env = { cfg, A, B, a: A.clientConfig(DB), b: B.clientConfig(DB) };
    res.env.postgres = (await one<{ v: string }>(env.a, 'SELECT version() AS v')).v;
    console.log(`[bench] clusters up (${(now() - t0).toFixed(1)} s): A :${A.port}, B :${B.port}; ${res.env.postgres}`);
    await setUp(env);
    console.log(`[bench] data loaded (${(now() - t0).toFixed(1)} s)`);

    const limit = await measureLimit(env, res);
    const m3none: number[] = [];
    const m3with: number[] = [];
    const m3captureOnly: number[] = [];
    const wantOneWay = ['m1', 'm2', 'rss', 'm3'].some((p) => cfg.phases.has(p as never));
    if (cfg.phases.has('m3')) await m3Arm(env, res, 'none (before apply)', null, m3none);
    if (cfg.phases.has('m1')) await sourceAlone(env, res);
    if (wantOneWay) {
      await resyncB(env);
      await oneWay(env, res, limit, outDir, m3with, m3captureOnly);
    }
    if (cfg.phases.has('m3')) {
      await m3Arm(env, res, 'none (after destroy)', null, m3none, 1);
      m3Figure(res, m3none, m3with, m3captureOnly);
    }
    if (cfg.phases.has('m5')) {
      if (cfg.phases.has('m3') || !wantOneWay) await resyncB(env);
      await twoSources(env, res, limit, outDir);
    }
    if (cfg.phases.has('m4')) await onetimecopy(env, res, limit, outDir);
    if (cfg.phases.has('transform')) await transformCost(env, res, outDir);
    if (cfg.phases.has('lr')) {
      const lr = await nativeLr(env, res, limit, PEERS.m1single);
      const ours = res.figures.find((f) => f.id === 'm1.single' && f.status === 'ok');
      const theirs = res.figures.find((f) => f.id === 'lr.m1.single' && f.status === 'ok');
      if (lr.length && ours?.value && theirs?.value) {
        res.check(
          'M1 one transaction: not below native LR in this run',
          ours.value >= theirs.value,
          `${Math.round(ours.value)} vs ${Math.round(theirs.value)} rows/s`,
        );
      }
    }
    if (cfg.phases.has('custom')) await customPhase(env, res, outDir);
    if (cfg.phases.has('failover')) await failoverPhase(env, res, outDir);
    if (cfg.phases.has('scale')) await scalePhase(env, res, outDir);
    if (cfg.phases.has('targets')) await targetsPhase(env, res, outDir);
  } catch (e) {
    res.add({ id: 'suite', label: 'suite', value: null, unit: '', status: 'failed', error: (e as Error).stack ?? String(e) });
    process.exitCode = 1;
  } finally {
    killAllRunners();
    await group?.stopAll();
    group = null;
  }
  res.env.seconds = Math.round(now() - t0);
  const file = res.write(outDir);
  console.log(`\n## bucardo benchmark (${cfg.quick ? 'quick' : 'full'}, scale ${cfg.scale}, ${res.env.seconds} s)\n`);
  console.log(res.table());
  console.log(`\n[bench] JSON: ${file}\n[bench] runner logs and profiles: ${outDir}`);
}

async function setUp(env: Env): Promise<void> {
  await exec(env.a, TABLES_DDL + dataSql(env.cfg.scale) + KEYS_DDL + BENCHCTL_DDL);
  await exec(env.b, TABLES_DDL + KEYS_DDL + BENCHCTL_DDL + ARRIVAL_TRIGGER_DDL);
  await exec(env.a, 'VACUUM ANALYZE');
  await exec(env.a, 'CHECKPOINT');
}

/** The physical limit of this run (measure.sh m4_physical); leaves B's pgbench_accounts loaded and keyed. */
async function measureLimit(env: Env, res: Results): Promise<Limit> {
  const rows = env.cfg.scale * 100_000;
  const reps: Limit['reps'] = [];
  for (let i = 0; i < env.cfg.reps; i++) {
    const r = await withDeadline('COPY limit', 600_000, async (s) => {
      await exec(env.b, 'ALTER TABLE pgbench_accounts DROP CONSTRAINT IF EXISTS pgbench_accounts_pkey; TRUNCATE pgbench_accounts; CHECKPOINT');
      const t0 = now();
      const unindexedS = await copyPipe(s, env.a, env.b, 'pgbench_accounts');
      await exec(env.b, 'ALTER TABLE pgbench_accounts ADD PRIMARY KEY (aid)');
      const unindexedPlusPkS = now() - t0;
      await exec(env.b, 'TRUNCATE pgbench_accounts; CHECKPOINT');
      const keyedS = await copyPipe(s, env.a, env.b, 'pgbench_accounts');
      return { keyedS, unindexedS, unindexedPlusPkS };
    });
    reps.push(r);
    console.log(
      `[bench] COPY pipe rep ${i + 1}: keyed ${r.keyedS.toFixed(2)} s, unindexed ${r.unindexedS.toFixed(2)} s (+ PK ${r.unindexedPlusPkS.toFixed(2)} s)`,
    );
  }
  const keyedS = median(reps.map((r) => r.keyedS));
  const limit: Limit = {
    rows,
    keyedS,
    keyedRowsPerS: rows / keyedS,
    unindexedS: median(reps.map((r) => r.unindexedS)),
    unindexedPlusPkS: median(reps.map((r) => r.unindexedPlusPkS)),
    reps,
  };
  res.add({
    id: 'limit.copy_keyed',
    label: `COPY pipe limit, ${rows.toLocaleString('en-US')} rows into keyed table`,
    value: limit.keyedRowsPerS,
    unit: 'rows/s',
    ratio: 1,
    status: 'ok',
    note: `${keyedS.toFixed(2)} s; unindexed ${limit.unindexedS.toFixed(2)} s, + PK ${limit.unindexedPlusPkS.toFixed(2)} s; median of ${reps.length}`,
    bucardo: PEERS.limit.bucardo,
    lr: PEERS.limit.lr,
    extra: { ...limit },
  });
  return limit;
}

/**
 * B := A for every replicated table (COPY pipe), before a sync starts with onetimecopy:
 * never (the peers' Bucardo syncs also started from identical databases). Needed again
 * whenever A took writes with no sync installed (M3's "none" arm).
 */
async function resyncB(env: Env): Promise<void> {
  const t0 = now();
  await withDeadline('resync B', 600_000, async (s) => {
    await exec(env.b, `TRUNCATE ${TABLES.join(', ')}`);
    for (const t of TABLES) await copyPipe(s, env.a, env.b, t);
  });
  await exec(env.b, `SELECT setval('pgbench_history_hid_seq', (SELECT last_value FROM pgbench_history_hid_seq), true)`).catch(() => {});
  await exec(env.b, 'VACUUM ANALYZE');
  await exec(env.b, 'CHECKPOINT');
  const f = await fingerprints(env);
  if (!f.same) throw new Error(`B differs from A after the resync: A ${f.a} B ${f.b}`);
  console.log(`[bench] B resynced from A (${(now() - t0).toFixed(1)} s)`);
}

function writeTopology(outDir: string, name: string, topo: Record<string, unknown>): string {
  const file = path.join(outDir, `${name}.yaml`);
  fs.writeFileSync(file, YAML.stringify(topo, { lineWidth: 0 }));
  return file;
}

async function cli(args: string[], what: string, timeout = 300_000): Promise<number> {
  const t0 = now();
  const r = await runCli(args, { timeout });
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}\n${(r.stderr || r.stdout).trim().split('\n').slice(-15).join('\n')}`);
  return now() - t0;
}

function baseTopology(env: Env, name: string, sync: Record<string, unknown>, dbs: Record<string, string> = {}): Record<string, unknown> {
  return {
    version: 1,
    name,
    databases: { a: { url: env.A.url(DB) }, b: { url: env.B.url(DB) }, ...Object.fromEntries(Object.entries(dbs).map(([k, u]) => [k, { url: u }])) },
    relgroups: { pgbench: { tables: TABLES } },
    syncs: sync,
  };
}

/** Every M3 sample, for the JSON. */
const m3Log: Record<string, unknown>[] = [];

/** M3 one arm: median over reps. */
async function m3Arm(env: Env, _res: Results, label: string, runner: RunnerProcess | null, into: number[], reps = env.cfg.m3Reps): Promise<void> {
  for (let i = 0; i < reps; i++) {
    try {
      const r = await withDeadline(`M3 ${label}`, (env.cfg.m3Secs + 900) * 1000, (s) => sourceTps(env, s, runner));
      into.push(r.tps);
      console.log(
        `[bench] M3 ${label}: ${r.tps.toFixed(0)} tps (lat ${r.latencyAvgMs.toFixed(1)} ms, errors ${r.errors})${r.runnerCpu ? `; runner ${JSON.stringify(r.runnerCpu)}` : ''}`,
      );
      m3Log.push({ label, ...r });
    } catch (e) {
      console.log(`[bench] M3 ${label}: ${(e as Error).message}`);
    }
  }
}

/**
 * M1's one-row variant is bounded by A's commit rate (durability on): the same burst on A
 * with no capture and no runner, as the ceiling of that figure.
 */
async function sourceAlone(env: Env, res: Results): Promise<void> {
  const n = Math.min(env.cfg.m1SingleRows, 20_000);
  const label = `A alone: ${n.toLocaleString('en-US')} one-row transactions, no capture (ceiling of M1 one-row)`;
  try {
    const r = await withDeadline(label, 600_000, (s) => oneRowBurst(s, env.a, { clients: 4, n, first: env.cfg.scale * 100_000 - n + 1 }));
    res.add({
      id: 'm1.source_alone',
      label,
      value: r.tps,
      unit: 'rows/s',
      status: 'ok',
      note: `${r.seconds.toFixed(1)} s`,
      bucardo: '852 tps TPC-B (no replication)',
      extra: { ...r },
    });
  } catch (e) {
    res.lost('m1.source_alone', label, 'rows/s', e);
  }
}

function m3Figure(res: Results, none: number[], withCapture: number[], captureOnly: number[] = []): void {
  if (!none.length || !withCapture.length) {
    res.add({
      id: 'm3.ratio',
      label: 'M3 source TPS with capture vs none (TPC-B-like, 4 clients)',
      value: null,
      unit: 'x',
      status: 'failed',
      error: `none: ${none.length} samples, with capture: ${withCapture.length}`,
      ...PEERS.m3,
    });
    return;
  }
  const n = median(none);
  const w = median(withCapture);
  const ratio = w / n;
  res.add({
    id: 'm3.ratio',
    label: 'M3 source TPS with capture vs none (TPC-B-like, 4 clients)',
    value: ratio,
    unit: 'x',
    status: 'ok',
    note: `${w.toFixed(0)} vs ${n.toFixed(0)} tps`,
    met: ratio >= 0.7,
    ...PEERS.m3,
    extra: { none, withCapture, captureOnly, samples: m3Log },
  });
  if (captureOnly.length) {
    const c = median(captureOnly);
    res.add({
      id: 'm3.capture_only',
      label: 'M3 diagnostic: capture installed, runner stopped, vs none',
      value: c / n,
      unit: 'x',
      status: 'ok',
      note: `${c.toFixed(0)} vs ${n.toFixed(0)} tps: the triggers' own cost`,
      extra: { captureOnly },
    });
  }
}

async function withPgss<T>(env: Env, fn: () => Promise<T>): Promise<{ r: T; pgss: Record<string, unknown> }> {
  await resetStatements(env);
  const r = await fn();
  const [a, b] = await Promise.all([topStatements(env.a), topStatements(env.b)]);
  return { r, pgss: { a, b } };
}

/** Phases with the one-way sync A -> B. */
async function oneWay(env: Env, res: Results, limit: Limit, outDir: string, m3with: number[], m3captureOnly: number[]): Promise<void> {
  const { cfg } = env;
  const file = writeTopology(
    outDir,
    'oneway',
    baseTopology(env, 'bench', { s_ab: { relgroup: 'pgbench', sources: ['a'], targets: ['b'], onetimecopy: 'never', autokick: true, checktime: '10s' } }),
  );
  const applyS = await cli(['apply', '-f', file, '--auto-approve'], 'bucardo apply (one-way)');
  console.log(`[bench] apply (one-way): ${applyS.toFixed(1)} s`);
  let runner = RunnerProcess.start('oneway', file, outDir, [], cfg.cpuProf);
  try {
    await withDeadline('first catch-up', 300_000, (s) => waitCaughtUp(env, s, runner, 280));
    if (cfg.phases.has('m3')) {
      await m3Arm(env, res, 'with capture', runner, m3with);
      // where the cost comes from: the capture triggers alone, with no runner competing for the 2 cores
      await runner.stop();
      await m3Arm(env, res, 'capture installed, runner stopped', null, m3captureOnly, 1);
      runner = RunnerProcess.start('oneway-2', file, outDir, [], cfg.cpuProf);
      await withDeadline('catch-up', 600_000, (s) => waitCaughtUp(env, s, runner, 580));
    }
    if (cfg.phases.has('m1')) {
      await m1(env, res, limit, runner, 'single', false);
      await m1(env, res, limit, runner, 'clients', false);
    }
    if (cfg.phases.has('m2')) for (const rate of cfg.m2Rates) await m2(env, res, runner, rate, false);
    if (cfg.phases.has('rss')) {
      // a fresh runner, so its peak is this phase's alone
      await runner.stop();
      runner = RunnerProcess.start('oneway-rss', file, outDir, [], cfg.cpuProf);
      await withDeadline('catch-up', 300_000, (s) => waitCaughtUp(env, s, runner, 280));
      const peaks: number[] = [];
      for (const rows of cfg.rssRows) {
        const id = `rss.${rows}`;
        const label = `Runner peak RSS, ${rows.toLocaleString('en-US')}-row delta`;
        try {
          const idle = runner.memory();
          const reset = runner.resetPeak();
          const sampler = rssSampler(runner);
          const { r, pgss } = await withPgss(env, () =>
            withDeadline(label, burstTimeoutS(env) * 1000 + 60_000, (s) =>
              burst(env, s, runner, { rows, variant: 'single', mm: false, timeoutS: burstTimeoutS(env) }),
            ),
          );
          const sampled = sampler.stop();
          const hwm = runner.memory()?.hwmKiB ?? NaN;
          const mib = (reset ? hwm : sampled) / 1024;
          peaks.push(mib);
          res.add({
            id,
            label,
            value: mib,
            unit: 'MiB',
            status: 'ok',
            met: mib <= 200,
            ...PEERS.rss,
            note: `${reset ? 'VmHWM' : 'sampled VmRSS'}; idle ${((idle?.rssKiB ?? 0) / 1024).toFixed(0)} MiB; ${Math.round(r.rowsPerS).toLocaleString('en-US')} rows/s = ${(r.rowsPerS / limit.keyedRowsPerS).toFixed(3)}x limit`,
            extra: { burst: r, idleKiB: idle, sampledPeakKiB: sampled, pgss },
          });
        } catch (e) {
          res.lost(id, label, 'MiB', e, PEERS.rss);
        }
      }
      if (peaks.length === 2)
        res.check('RSS flat from small to large delta', peaks[1] <= peaks[0] * 1.5 + 16, `${peaks[0].toFixed(0)} -> ${peaks[1].toFixed(0)} MiB`);
    }
    await withDeadline('final catch-up', 900_000, (s) => waitCaughtUp(env, s, runner, 880));
    const f = await fingerprints(env);
    res.check('one-way A = B after catching up', f.same, `A ${f.a} B ${f.b}`);
  } catch (e) {
    res.add({
      id: 'oneway',
      label: 'one-way phases',
      value: null,
      unit: '',
      status: /timed out/.test(String(e)) ? 'timed out' : 'failed',
      error: (e as Error).message,
    });
  } finally {
    await runner.stop();
  }
  await cli(['destroy', '-f', file, '--auto-approve'], 'bucardo destroy (one-way)').catch((e) => console.log(`[bench] ${(e as Error).message}`));
}

async function m1(env: Env, res: Results, limit: Limit, runner: RunnerProcess, variant: 'single' | 'clients', mm: boolean): Promise<void> {
  const rows = variant === 'single' ? env.cfg.m1Rows : env.cfg.m1SingleRows;
  const peers = mm ? (variant === 'single' ? PEERS.m5single : PEERS.m5clients) : variant === 'single' ? PEERS.m1single : PEERS.m1clients;
  const id = `${mm ? 'm5' : 'm1'}.${variant}`;
  const label = `${mm ? 'M5 (2 sources) ' : 'M1 '}${variant === 'single' ? `one ${rows.toLocaleString('en-US')}-row transaction` : `${rows.toLocaleString('en-US')} one-row transactions (4 clients)`}`;
  try {
    const sampler = rssSampler(runner);
    const { r, pgss } = await withPgss(env, () =>
      withDeadline(label, burstTimeoutS(env) * 1000 + 60_000, (s) => burst(env, s, runner, { rows, variant, mm, timeoutS: burstTimeoutS(env) })),
    );
    const rss = sampler.stop() / 1024;
    const ratio = r.rowsPerS / limit.keyedRowsPerS;
    const met = mm ? null : variant === 'single' ? ratio >= 0.14 : r.rowsPerS >= 2511;
    res.add({
      id,
      label,
      value: r.rowsPerS,
      unit: 'rows/s',
      ratio,
      status: 'ok',
      met,
      ...peers,
      note: `${r.totalS.toFixed(2)} s; source alone ${Math.round(r.sourceRowsPerS).toLocaleString('en-US')} rows/s; ${(r.runs as { runs: number }).runs} runs; runner RSS ${rss.toFixed(0)} MiB; runner+backends ${r.cpu.coresUsed} cores`,
      extra: { ...r, runnerPeakRssMiB: rss, pgss },
    });
  } catch (e) {
    res.lost(id, label, 'rows/s', e, peers);
  }
}

async function m2(env: Env, res: Results, runner: RunnerProcess, rate: number, mm: boolean): Promise<void> {
  const id = `${mm ? 'm5' : 'm2'}.lag${rate}`;
  const label = `${mm ? 'M5 (2 sources, B at 10% rate) ' : 'M2 '}heartbeat lag at ${rate} tps, p50 (p95 / p99)`;
  const peers = mm ? (PEERS.m5lag[rate] ?? { bucardo: '', lr: '' }) : (PEERS.m2[rate] ?? { bucardo: '', lr: '' });
  try {
    const { r, pgss } = await withPgss(env, () =>
      withDeadline(label, (env.cfg.m2Secs + 900) * 1000, (s) => lag(env, s, runner, { rate, secs: env.cfg.m2Secs, mm })),
    );
    const met = r.p99 <= 1000 && r.p50 <= 250;
    res.add({
      id,
      label,
      value: r.p50,
      unit: 'ms',
      status: 'ok',
      met,
      target: 'p50 <= 250 ms, p99 <= 1 s',
      ...peers,
      note: `${Math.round(r.p95)} / ${Math.round(r.p99)} ms, max ${Math.round(r.max)}; ${r.heartbeats}/${r.expected} beats; load ${r.load.tps.toFixed(0)} tps${r.load.errors ? ` (${r.load.errors} errors)` : ''}${r.loadOnB ? `, B ${r.loadOnB.tps.toFixed(0)} tps${r.loadOnB.errors ? ` (${r.loadOnB.errors} errors)` : ''}` : ''}; ${(r.runs as { runs: number }).runs} runs; runner+backends ${r.cpu.coresUsed} cores`,
      extra: { ...r, pgss },
    });
  } catch (e) {
    res.lost(id, label, 'ms', e, { ...peers, target: 'p50 <= 250 ms, p99 <= 1 s', extra: (e as { partial?: unknown }).partial as Record<string, unknown> });
  }
}

/** M5: A and B both sources (conflict: latest), B writing 10% of the keys too. */
async function twoSources(env: Env, res: Results, limit: Limit, outDir: string): Promise<void> {
  const { cfg } = env;
  // history keys from B in their own range, so B's inserts never collide with A's
  await exec(env.b, `SELECT setval('pgbench_history_hid_seq', 1000000000000)`);
  const file = writeTopology(
    outDir,
    'twosources',
    baseTopology(env, 'benchmm', {
      s_mm: { relgroup: 'pgbench', sources: ['a', 'b'], conflict: 'latest', onetimecopy: 'never', autokick: true, checktime: '10s' },
    }),
  );
  try {
    await cli(['apply', '-f', file, '--auto-approve'], 'bucardo apply (two sources)');
  } catch (e) {
    res.lost('m5', 'M5 two sources', '', e);
    return;
  }
  const runner = RunnerProcess.start('twosources', file, outDir, [], cfg.cpuProf);
  try {
    await withDeadline('first catch-up', 300_000, (s) => waitCaughtUp(env, s, runner, 280, true));
    await m1(env, res, limit, runner, 'single', true);
    await m1(env, res, limit, runner, 'clients', true);
    for (const rate of cfg.mmRates) await m2(env, res, runner, rate, true);
    await withDeadline('final catch-up', 900_000, (s) => waitCaughtUp(env, s, runner, 880, true));
    const f = await fingerprints(env);
    res.check('two sources A = B after catching up', f.same, `A ${f.a} B ${f.b}`);
  } catch (e) {
    res.add({ id: 'm5', label: 'M5 phases', value: null, unit: '', status: /timed out/.test(String(e)) ? 'timed out' : 'failed', error: (e as Error).message });
  } finally {
    await runner.stop();
  }
  await cli(['destroy', '-f', file, '--auto-approve'], 'bucardo destroy (two sources)').catch((e) => console.log(`[bench] ${(e as Error).message}`));
}

/**
 * M4: onetimecopy of pgbench_accounts from A into an empty keyed table, as the sync's first
 * run (`bucardo run --once --sync ...`), while A takes TPC-B-like writes at a fixed rate;
 * the figure is the copy run's duration from the runner's log (as the peers took Bucardo's
 * syncrun ended - started), beside the keyed COPY pipe. Then the writes stop, the runner
 * catches up, and A and B must hold the same accounts (count, sum, content hash).
 */
async function onetimecopy(env: Env, res: Results, limit: Limit, outDir: string): Promise<void> {
  const variants = [
    { sync: 's_keep', db: 'bench_copy_keep', label: 'M4 onetimecopy into empty keyed table', opts: {} },
    { sync: 's_rebuild', db: 'bench_copy_rebuild', label: 'M4 onetimecopy, rebuild_index: true', opts: { rebuild_index: true } },
  ];
  const dbs: Record<string, string> = {};
  for (const v of variants) {
    await env.B.createDatabase(v.db);
    await exec(
      env.B.clientConfig(v.db),
      `CREATE TABLE pgbench_accounts (aid int NOT NULL PRIMARY KEY, bid int, abalance int, filler char(84)) WITH (fillfactor = 100)`,
    );
    dbs[v.sync] = env.B.url(v.db);
  }
  const topo = {
    version: 1,
    name: 'benchcopy',
    databases: { a: { url: env.A.url(DB) }, ...Object.fromEntries(variants.map((v) => [v.db, { url: dbs[v.sync] }])) },
    relgroups: { accounts: { tables: ['public.pgbench_accounts'] } },
    syncs: Object.fromEntries(
      variants.map((v) => [v.sync, { relgroup: 'accounts', sources: ['a'], targets: [v.db], onetimecopy: 'if_empty', autokick: false, ...v.opts }]),
    ),
  };
  const file = writeTopology(outDir, 'onetimecopy', topo);
  try {
    await cli(['apply', '-f', file, '--auto-approve'], 'bucardo apply (onetimecopy)');
  } catch (e) {
    for (const v of variants) res.lost(`m4.${v.sync}`, v.label, 's', e, PEERS.m4);
    return;
  }
  for (const v of variants) {
    const target = env.B.clientConfig(v.db);
    try {
      await resetStatements(env);
      const r = await withDeadline(v.label, 1_200_000, async (s) => {
        await exec(target, 'CHECKPOINT');
        const stop = new AbortController();
        const load = tpcbLoad(s, env.a, { clients: 4, rate: env.cfg.m4WriteRate, seconds: 3600, scale: env.cfg.scale, stop: stop.signal });
        await sleep(1000);
        const t0 = now();
        const runner = RunnerProcess.start(`m4-${v.sync}`, file, outDir, ['--once', '--sync', v.sync], env.cfg.cpuProf);
        s.defer(() => runner.stop(5000));
        const copied = () => runner.runsSince(0).find((l) => (l.copied ?? []).length > 0);
        let copyRun = copied();
        while (!copyRun) {
          if (!runner.alive) throw new Error(`the runner exited before the copy was logged\n${runner.tail()}`);
          await sleep(50);
          copyRun = copied();
        }
        const wallS = now() - t0;
        await sleep(1000); // writes continue past the copy, to be caught up by delta runs
        stop.abort();
        const written = await load;
        const exit = await runner.exited;
        if (exit.code !== 0) throw new Error(`bucardo run --once exited ${exit.code}\n${runner.tail()}`);
        // the writes that committed after --once's last run: one more --once catches them up
        await cli(['run', '-f', file, '--once', '--sync', v.sync], 'bucardo run --once (catch-up)', 600_000);
        const [fa, fb] = await Promise.all([one<{ f: string }>(env.a, ACCOUNTS_CHECK_SQL), one<{ f: string }>(target, ACCOUNTS_CHECK_SQL)]);
        return { runS: (copyRun.duration_ms ?? NaN) / 1000, wallS, written, same: fa.f === fb.f, fa: fa.f, fb: fb.f, runs: summarizeRuns(runner.lines) };
      });
      const pgss = { a: await topStatements(env.a), b: await topStatements(env.b, 12, v.db) };
      const speed = limit.keyedS / r.runS;
      res.add({
        id: `m4.${v.sync}`,
        label: v.label,
        value: r.runS,
        unit: 's',
        ratio: speed,
        status: 'ok',
        met: speed >= 1.4,
        ...PEERS.m4,
        note: `copy run; pipe keyed ${limit.keyedS.toFixed(2)} s; wall from spawn ${r.wallS.toFixed(2)} s; ${r.written.transactions} writes on A meanwhile`,
        extra: { ...r, pgss },
      });
      res.check(`${v.sync}: no write lost (A = B after catch-up)`, r.same, `A ${r.fa} B ${r.fb}`);
    } catch (e) {
      res.lost(`m4.${v.sync}`, v.label, 's', e, PEERS.m4);
    }
  }
  await cli(['destroy', '-f', file, '--auto-approve'], 'bucardo destroy (onetimecopy)').catch((e) => console.log(`[bench] ${(e as Error).message}`));
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (e) => void shutdown(1, `failed: ${(e as Error).stack ?? e}`),
);

/** Bound of one burst until visible: generous, but a stuck runner must not cost half an hour in --quick. */
function burstTimeoutS(env: Env): number {
  return env.cfg.quick ? 120 : 1_500;
}
