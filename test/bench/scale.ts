/**
 * Phase `scale` (issue 13): a topology of real size. 1,000 tables on A (10 rows each),
 * replicated one-way to B, in three shapes, one after the other on fresh databases:
 *
 *   base    2 of those tables in one sync: the lag of a one-row change to compare with
 *   one     all 1,000 tables in one sync
 *   many    50 syncs of 20 tables each
 *
 * Per shape: `plan` and `apply` wall time (the CLI as users run it), the first run
 * (onetimecopy of every table), then the lag of a one-row change (insert on A, poll B
 * every 5 ms; median of 10), then 20 s of idleness: the runner's CPU (user + system, as a
 * share of one core), its RSS, and its connections per database (pg_stat_activity by
 * application_name). The targets of the issue are checked at the end.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import pg from 'pg';
import type { Env } from './measure.js';
import { exec, one } from './measure.js';
import { RunnerProcess, cpuSeconds } from './runner.js';
import { type Results, median } from './report.js';
import { withDeadline, now, sleep } from './scope.js';
import { runCli } from '../helpers/cli.js';

const TABLES = 1_000;
const SYNCS = 50;
const LAG_SAMPLES = 10;
const IDLE_SECONDS = 20;
const table = (i: number) => `t${String(i).padStart(4, '0')}`;

interface Shape {
  id: 'base' | 'one' | 'many';
  label: string;
  /** relgroup -> tables; one sync per relgroup. */
  groups: Record<string, string[]>;
  /** The table the one-row changes go into. */
  probe: string;
}

const all = Array.from({ length: TABLES }, (_, i) => `public.${table(i + 1)}`);
const SHAPES: Shape[] = [
  { id: 'base', label: '2 tables, 1 sync', groups: { g: all.slice(0, 2) }, probe: table(2) },
  { id: 'one', label: `${TABLES} tables, 1 sync`, groups: { g: all }, probe: table(TABLES / 2) },
  {
    id: 'many',
    label: `${SYNCS} syncs of ${TABLES / SYNCS} tables`,
    groups: Object.fromEntries(
      Array.from({ length: SYNCS }, (_, s) => [`g${String(s + 1).padStart(2, '0')}`, all.slice(s * (TABLES / SYNCS), (s + 1) * (TABLES / SYNCS))]),
    ),
    probe: table(TABLES / 2),
  },
];

const CREATE_TABLES = (rows: number) => `DO $$ BEGIN
  FOR i IN 1..${TABLES} LOOP
    EXECUTE format('CREATE TABLE public.%I (id integer PRIMARY KEY, v text)', 't' || lpad(i::text, 4, '0'));
    ${rows ? `EXECUTE format('INSERT INTO public.%I SELECT g, ''row '' || g FROM generate_series(1, ${rows}) g', 't' || lpad(i::text, 4, '0'));` : ''}
  END LOOP;
END $$`;

interface Measured {
  planS: number;
  applyS: number;
  firstRunS: number;
  lagMs: number[];
  idleCpuPct: number;
  rssMiB: number;
  connections: Record<string, number>;
}

export async function scalePhase(env: Env, res: Results, outDir: string): Promise<void> {
  const dir = path.join(outDir, 'scale');
  fs.mkdirSync(dir, { recursive: true });
  const got = new Map<Shape['id'], Measured>();
  for (const shape of SHAPES) {
    try {
      got.set(shape.id, await withDeadline(`scale: ${shape.label}`, 900_000, () => measureShape(env, shape, dir)));
    } catch (e) {
      res.lost(`scale.${shape.id}`, `scale, ${shape.label}`, 's', e);
    }
  }
  const base = got.get('base');
  for (const shape of SHAPES) {
    const m = got.get(shape.id);
    if (!m) continue;
    const lag = median(m.lagMs);
    const conns = Object.entries(m.connections)
      .map(([db, n]) => `${db} ${n}`)
      .join(', ');
    res.add({
      id: `scale.${shape.id}.plan`,
      label: `scale, ${shape.label}: plan`,
      value: m.planS,
      unit: 's',
      status: 'ok',
      target: shape.id === 'base' ? undefined : '< 30 s',
      met: shape.id === 'base' ? undefined : m.planS < 30,
    });
    res.add({
      id: `scale.${shape.id}.apply`,
      label: `scale, ${shape.label}: apply`,
      value: m.applyS,
      unit: 's',
      status: 'ok',
      target: shape.id === 'base' ? undefined : '< 30 s',
      met: shape.id === 'base' ? undefined : m.applyS < 30,
    });
    res.add({ id: `scale.${shape.id}.first_run`, label: `scale, ${shape.label}: first run (onetimecopy)`, value: m.firstRunS, unit: 's', status: 'ok' });
    const ratio = base ? lag / median(base.lagMs) : null;
    res.add({
      id: `scale.${shape.id}.lag`,
      label: `scale, ${shape.label}: lag of a one-row change`,
      value: lag,
      unit: 'ms',
      status: 'ok',
      note: `median of ${m.lagMs.length}, max ${Math.round(Math.max(...m.lagMs))} ms${ratio !== null && shape.id !== 'base' ? `; ${ratio.toFixed(2)}x the 2-table case` : ''}`,
      target: shape.id === 'base' ? undefined : '<= 1.5x the 2-table case',
      met: shape.id === 'base' || ratio === null ? undefined : ratio <= 1.5,
      extra: { samples: m.lagMs },
    });
    res.add({
      id: `scale.${shape.id}.idle_cpu`,
      label: `scale, ${shape.label}: runner idle CPU`,
      value: Math.round(m.idleCpuPct * 100) / 100,
      unit: '% of a core',
      status: 'ok',
      note: `over ${IDLE_SECONDS} s; RSS ${Math.round(m.rssMiB)} MiB; connections ${conns}`,
      target: '< 2% of a core',
      met: m.idleCpuPct < 2,
      extra: { connections: m.connections, rssMiB: m.rssMiB },
    });
  }
}

async function measureShape(env: Env, shape: Shape, dir: string): Promise<Measured> {
  const dbA = `scale_${shape.id}_a`;
  const dbB = `scale_${shape.id}_b`;
  await env.A.createDatabase(dbA);
  await env.B.createDatabase(dbB);
  const a = env.A.clientConfig(dbA);
  const b = env.B.clientConfig(dbB);
  await exec(a, CREATE_TABLES(10));
  await exec(b, CREATE_TABLES(0));
  await exec(a, 'VACUUM ANALYZE');
  const file = path.join(dir, `${shape.id}.yaml`);
  const topology = {
    version: 1,
    name: `scale${shape.id}`,
    databases: { a: { url: env.A.url(dbA) }, b: { url: env.B.url(dbB) } },
    relgroups: Object.fromEntries(Object.entries(shape.groups).map(([g, tables]) => [g, { tables }])),
    syncs: Object.fromEntries(Object.keys(shape.groups).map((g) => [`s_${g}`, { relgroup: g, sources: ['a'], targets: ['b'] }])),
  };
  fs.writeFileSync(file, YAML.stringify(topology, { lineWidth: 0 }));

  const timed = async (args: string[]) => {
    const t0 = now();
    const r = await runCli(args, { timeout: 600_000 });
    if (r.code !== 0) throw new Error(`bucardo ${args[0]} exited ${r.code}\n${r.out.trim().split('\n').slice(-10).join('\n')}`);
    return now() - t0;
  };
  const planS = await timed(['plan', '-f', file]);
  const applyS = await timed(['apply', '-f', file, '--auto-approve']);
  console.log(`[bench] scale ${shape.label}: plan ${planS.toFixed(1)} s, apply ${applyS.toFixed(1)} s`);

  const runner = RunnerProcess.start(`scale-${shape.id}`, file, dir, []);
  const poll = new pg.Client(b);
  await poll.connect();
  try {
    const arrived = async (id: number) => (await poll.query(`SELECT 1 FROM public.${shape.probe} WHERE id = $1`, [id])).rowCount === 1;
    const waitArrival = async (id: number, timeoutMs: number) => {
      const t0 = now();
      while (!(await arrived(id))) {
        if (runner.exitInfo) throw new Error(`the runner exited: ${runner.tail()}`);
        if ((now() - t0) * 1000 > timeoutMs) throw new Error(`row ${id} of ${shape.probe} did not arrive within ${timeoutMs} ms`);
        await sleep(5);
      }
      return (now() - t0) * 1000;
    };
    // the first run copies every table; the probe table's rows arriving means it is through
    const t0 = now();
    await one(a, `INSERT INTO public.${shape.probe} VALUES (100000, 'first') RETURNING id`);
    await waitArrival(100000, 600_000);
    const firstRunS = now() - t0;
    await sleep(2_000);
    const lagMs: number[] = [];
    for (let i = 1; i <= LAG_SAMPLES; i++) {
      const id = 100000 + i;
      const c = new pg.Client(a);
      await c.connect();
      try {
        await c.query(`INSERT INTO public.${shape.probe} VALUES ($1, 'probe')`, [id]);
        // from its commit (autocommit: the INSERT returned) to its arrival on B
        lagMs.push(await waitArrival(id, 60_000));
      } finally {
        await c.end();
      }
      await sleep(300);
    }
    await sleep(3_000);
    const cpu0 = cpuSeconds(runner.pid) ?? 0;
    const w0 = now();
    await sleep(IDLE_SECONDS * 1000);
    const idleCpuPct = (((cpuSeconds(runner.pid) ?? 0) - cpu0) / (now() - w0)) * 100;
    const rssMiB = (runner.memory()?.rssKiB ?? 0) / 1024;
    const connections: Record<string, number> = {};
    for (const [name, cfg, db] of [
      ['a', a, dbA],
      ['b', b, dbB],
    ] as const) {
      const r = await one<{ n: number }>(cfg, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'bucardo:%'`, [db]);
      connections[name] = r.n;
    }
    console.log(
      `[bench] scale ${shape.label}: first run ${firstRunS.toFixed(1)} s, lag median ${Math.round(median(lagMs))} ms, idle CPU ${idleCpuPct.toFixed(2)}%, RSS ${Math.round(rssMiB)} MiB, connections ${JSON.stringify(connections)}`,
    );
    return { planS, applyS, firstRunS, lagMs, idleCpuPct, rssMiB, connections };
  } finally {
    await poll.end().catch(() => {});
    await runner.stop();
    await env.A.query('postgres', `DROP DATABASE ${dbA} WITH (FORCE)`).catch(() => {});
    await env.B.query('postgres', `DROP DATABASE ${dbB} WITH (FORCE)`).catch(() => {});
  }
}
