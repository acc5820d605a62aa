/**
 * The `custom` phase (`npm run bench -- --quick --only custom`): what a custom conflict
 * handler (docs/custom-code.md) costs per 100,000 conflicting rows. Two sources A and B
 * hold the same 100k rows; each updates every row (one statement each), and one
 * `bucardo run --once` settles the 100k conflicts. Once per arm, each in fresh databases:
 *
 *   latest        the built-in strategy: one GROUP BY on the hub, nothing leaves PostgreSQL
 *   custom pick   resolve(batch) names a source for every conflict (the rows still travel
 *                 to Node: each source's current rows of every batch, 10,000 per call)
 *   custom merge  resolve(batch) returns a merged row for every conflict, which every
 *                 database then takes (the winner's side no longer skips its own rows)
 *
 * The figure is the run's own duration from its log line (no process start-up, no
 * registry read); the note gives the difference to `latest` per 100k conflicts.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { runCli } from '../helpers/cli.js';
import { type Env, exec, one } from './measure.js';
import { type Results, median } from './report.js';

const ROWS = 100_000;

const ARMS = [
  { arm: 'latest', label: 'custom: 100k conflicts, conflict: latest (baseline)', conflict: 'latest' as unknown, module: null as string | null },
  {
    arm: 'pick',
    label: 'custom: 100k conflicts, resolve() picks a source',
    conflict: { custom: './cf-pick.mjs' },
    module: `export function resolve(batch) { return batch.conflicts.map((c) => Object.keys(c.rows)[0]); }\n`,
  },
  {
    arm: 'merge',
    label: 'custom: 100k conflicts, resolve() merges every row',
    conflict: { custom: './cf-merge.mjs' },
    module: `export function resolve(batch) {
  return batch.conflicts.map((c) => ({ row: { ...c.rows.a, qty: String(Number(c.rows.a.qty) + Number(c.rows.b.qty)) } }));
}\n`,
  },
];

const FINGERPRINT = `SELECT count(*)::text || '/' || md5(string_agg(t::text, ',' ORDER BY id)) AS f FROM cf_items t`;

export async function customPhase(env: Env, res: Results, outDir: string): Promise<void> {
  const baseline: number[] = [];
  for (const a of ARMS) {
    const times: number[] = [];
    try {
      if (a.module) fs.writeFileSync(path.join(outDir, `cf-${a.arm}.mjs`), a.module);
      for (let rep = 0; rep < env.cfg.reps; rep++) times.push(await oneRun(env, outDir, a, rep));
    } catch (e) {
      res.lost(`custom.${a.arm}`, a.label, 'ms', e);
      continue;
    }
    const ms = median(times);
    if (a.arm === 'latest') baseline.push(ms);
    const extra = baseline.length && a.arm !== 'latest' ? `; +${Math.round(ms - baseline[0]).toLocaleString('en-US')} ms over latest per 100k conflicts` : '';
    res.add({
      id: `custom.${a.arm}`,
      label: a.label,
      value: ms,
      unit: 'ms',
      status: 'ok',
      note: `run duration from its log line, ${((ms * 1000) / ROWS).toFixed(1)} µs per conflict${extra}${times.length > 1 ? `; median of ${times.length}` : ''}`,
      extra: { times },
    });
  }
}

/** One arm, one repetition, in fresh databases: set up, conflict, run; the run's duration in ms. */
async function oneRun(env: Env, outDir: string, a: (typeof ARMS)[number], rep: number): Promise<number> {
  const db = `bench_cf_${a.arm}_${rep}`;
  await Promise.all([env.A.createDatabase(db), env.B.createDatabase(db)]);
  const [ca, cb] = [env.A.clientConfig(db), env.B.clientConfig(db)];
  const ddl = `CREATE TABLE cf_items (id int PRIMARY KEY, qty int NOT NULL, note text);
INSERT INTO cf_items SELECT i, 0, 'row ' || i FROM generate_series(1, ${ROWS}) i; ANALYZE cf_items`;
  await Promise.all([exec(ca, ddl), exec(cb, ddl)]);
  const topo = {
    version: 1,
    name: `benchcf_${a.arm}`,
    databases: { a: { url: env.A.url(db) }, b: { url: env.B.url(db) } },
    relgroups: { cf: { tables: [{ name: 'public.cf_items', conflict: a.conflict }] } },
    syncs: { cf: { relgroup: 'cf', sources: ['a', 'b'], onetimecopy: 'never', autokick: false } },
  };
  const file = path.join(outDir, `custom-${a.arm}.yaml`);
  fs.writeFileSync(file, YAML.stringify(topo, { lineWidth: 0 }));
  const cli = async (args: string[]) => {
    const r = await runCli(args, { timeout: 600_000 });
    if (r.code !== 0) throw new Error(`bucardo ${args[0]} exited ${r.code}\n${r.out.trim().split('\n').slice(-15).join('\n')}`);
    return r.stdout;
  };
  await cli(['apply', '-f', file, '--auto-approve']);
  await exec(ca, `UPDATE cf_items SET qty = qty + 1, note = 'a'`);
  await exec(cb, `UPDATE cf_items SET qty = qty + 2, note = 'b'`);
  const out = await cli(['run', '-f', file, '--once']);
  const m = /INFO {2}run sync=cf .*conflicts=(\d+) .*duration=(\d+)ms/.exec(out);
  if (!m) throw new Error(`no run line in the runner's output:\n${out.slice(-2000)}`);
  if (Number(m[1]) !== ROWS) throw new Error(`expected ${ROWS} conflicts, the run counted ${m[1]}`);
  const [fa, fb] = await Promise.all([one<{ f: string }>(ca, FINGERPRINT), one<{ f: string }>(cb, FINGERPRINT)]);
  if (fa.f !== fb.f) throw new Error(`A and B differ after the run: ${fa.f} / ${fb.f}`);
  await cli(['destroy', '-f', file, '--auto-approve']);
  console.log(`[bench] custom ${a.arm} rep ${rep + 1}: ${m[2]} ms for ${ROWS.toLocaleString('en-US')} conflicts`);
  return Number(m[2]);
}
