/**
 * Phase `transform` (SPEC section 6): what a transform module and a row filter cost. One
 * 100,000-row table on A, four one-way syncs to four databases of B, the same rows to
 * each: as they are (plain), through an identity transform, through the e-mail masking
 * transform of examples/transforms/mask-email.js, and through a row filter (half the rows
 * match). Per repetition (at least 5), one transaction on A updates every row; then each
 * sync runs once (`bucardo run --once --sync S`), in an order that rotates, and the figure
 * is the median of that run's duration from its log.
 *
 * Why the forms differ beyond the module's own cost: a transform's rows go through the
 * staging table (a transform may leave a row alone, which the direct apply's delete of
 * every key would not), where plain rows and filtered ones take the direct apply (delete
 * the keys, COPY the rows in; receive.ts DIRECT_MIN_ROWS); and they travel as text, where
 * plain rows of built-in types travel in binary.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { packageRoot } from '../../engine/paths.js';
import type { Env } from './measure.js';
import { exec } from './measure.js';
import { RunnerProcess } from './runner.js';
import { type Results, median } from './report.js';
import { withDeadline, now } from './scope.js';
import { runCli } from '../helpers/cli.js';

const ROWS = 100_000;
const SOURCE_DB = 'bench_tr';
const DDL = `CREATE TABLE public.customers (id integer PRIMARY KEY, name text NOT NULL, email text, region text NOT NULL, score integer)`;
const VARIANTS = [
  { sync: 'plain', label: 'plain', over: {} },
  { sync: 'identity', label: 'identity transform', over: { transform: './transforms/identity.js' } },
  { sync: 'mask', label: 'masking transform', over: { transform: './transforms/mask-email.js' } },
  { sync: 'where', label: "where region = 'EU' (half the rows)", over: { where: "region = 'EU'" } },
] as const;

export async function transformCost(env: Env, res: Results, outDir: string): Promise<void> {
  const a = env.A.clientConfig(SOURCE_DB);
  await env.A.createDatabase(SOURCE_DB);
  await exec(
    a,
    `${DDL}; INSERT INTO public.customers SELECT i, 'customer ' || i, 'user' || i || '@example.com', CASE WHEN i % 2 = 0 THEN 'EU' ELSE 'US' END, 0 FROM generate_series(1, ${ROWS}) i`,
  );
  await exec(a, 'VACUUM ANALYZE public.customers');
  for (const v of VARIANTS) {
    await env.B.createDatabase(`tr_${v.sync}`);
    await exec(env.B.clientConfig(`tr_${v.sync}`), DDL);
  }
  const dir = path.join(outDir, 'transform');
  fs.mkdirSync(path.join(dir, 'transforms'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'transforms', 'identity.js'), 'export function transform(row) { return row; }\n');
  fs.copyFileSync(path.join(packageRoot(), 'examples', 'transforms', 'mask-email.js'), path.join(dir, 'transforms', 'mask-email.js'));
  const file = path.join(dir, 'transform.yaml');
  fs.writeFileSync(
    file,
    YAML.stringify(
      {
        version: 1,
        name: 'benchtr',
        databases: { a: { url: env.A.url(SOURCE_DB) }, ...Object.fromEntries(VARIANTS.map((v) => [v.sync, { url: env.B.url(`tr_${v.sync}`) }])) },
        relgroups: {
          g: {
            tables: [
              { name: 'public.customers', targets: Object.fromEntries(VARIANTS.filter((v) => Object.keys(v.over).length).map((v) => [v.sync, v.over])) },
            ],
          },
        },
        syncs: Object.fromEntries(
          VARIANTS.map((v) => [v.sync, { relgroup: 'g', sources: ['a'], targets: [v.sync], onetimecopy: 'if_empty', autokick: false }]),
        ),
      },
      { lineWidth: 0 },
    ),
  );

  const samples = new Map<string, number[]>(VARIANTS.map((v) => [v.sync, []]));
  try {
    await withDeadline('transform: apply and copy', 600_000, async () => {
      const ap = await runCli(['apply', '-f', file, '--auto-approve']);
      if (ap.code !== 0) throw new Error(`apply exited ${ap.code}\n${ap.out.trim().split('\n').slice(-10).join('\n')}`);
      const r = await runOnce(file, outDir, 'transform-copy', []);
      if (r.code !== 0) throw new Error(`the first run (copies) exited ${r.code}`);
    });
    await withDeadline('transform: runs', 1_800_000, async () => {
      for (let rep = 0; rep < Math.max(env.cfg.reps, 5); rep++) {
        await exec(a, `UPDATE public.customers SET score = score + 1, email = 'new' || email`);
        // hint bits and visibility set for every variant alike (else the first run to read the new rows pays for it)
        await exec(a, 'VACUUM');
        // each repetition starts with another variant: no form always reads first
        for (const v of [...VARIANTS.slice(rep % VARIANTS.length), ...VARIANTS.slice(0, rep % VARIANTS.length)]) {
          const r = await runOnce(file, outDir, `transform-${v.sync}-${rep}`, ['--sync', v.sync]);
          const run = r.runner.runsSince(0).find((l) => (l.rows ?? 0) > 0);
          if (r.code !== 0 || !run?.duration_ms) throw new Error(`sync ${v.sync}: run --once exited ${r.code}\n${r.runner.tail()}`);
          samples.get(v.sync)!.push(run.duration_ms);
          console.log(`[bench] transform rep ${rep + 1}: ${v.label} ${run.duration_ms} ms for ${run.rows} rows`);
        }
      }
    });
  } catch (e) {
    for (const v of VARIANTS) if (!samples.get(v.sync)!.length) res.lost(`transform.${v.sync}`, `100k updated rows one-way, ${v.label}`, 'ms', e);
  }
  const plain = median(samples.get('plain')!);
  for (const v of VARIANTS) {
    const s = samples.get(v.sync)!;
    if (!s.length) continue;
    const ms = median(s);
    res.add({
      id: `transform.${v.sync}`,
      label: `100k updated rows one-way, ${v.label}`,
      value: ms,
      unit: 'ms',
      status: 'ok',
      note: `${v.sync === 'plain' ? 'direct apply, binary COPY' : `${(ms / plain).toFixed(2)}x plain, ${ms >= plain ? '+' : '-'}${Math.abs(Math.round(ms - plain))} ms per 100k rows`}; median of ${s.length}`,
      extra: { samples: s },
    });
  }
}

/** `bucardo run -f FILE --once [extra]` as a child, to its exit. */
async function runOnce(file: string, outDir: string, label: string, extra: string[]) {
  const t0 = now();
  const runner = RunnerProcess.start(label, file, outDir, ['--once', ...extra]);
  const exit = await runner.exited;
  return { code: exit.code, runner, seconds: now() - t0 };
}
