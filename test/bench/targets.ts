/**
 * Phase `targets` (SPEC section 7, issue 14): M1 into a SQLite target. One 100,000-row
 * table on A, a one-way sync into a SQLite file; per repetition (at least 3) one
 * transaction on A updates every row, then `bucardo run --once` replicates it, and the
 * figure is the median of that run's duration from its log. Beside it, the floor: the same
 * 100,000 rows (read from A beforehand, untimed) bulk-loaded into an empty SQLite table by
 * better-sqlite3 alone, in one transaction with one prepared INSERT. The ratio says what
 * the run costs on top of SQLite's own write speed: reading the winners' rows by COPY,
 * parsing the text, mapping each value, and an upsert instead of a plain insert.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import pg from 'pg';
import type { Env } from './measure.js';
import { exec } from './measure.js';
import { RunnerProcess } from './runner.js';
import { type Results, median } from './report.js';
import { withDeadline, now } from './scope.js';
import { runCli } from '../helpers/cli.js';
import { loadSqliteDriver } from '../../engine/targets/sqlite.js';
import { mariadbM1 } from './targets-mariadb.js';
import { redisM1 } from './targets-redis.js';

const ROWS = 100_000;
const SOURCE_DB = 'bench_targets';
const DDL = `CREATE TABLE public.items (id integer PRIMARY KEY, name text NOT NULL, qty bigint, price numeric(12,2), at timestamptz, ok boolean)`;
const LITE_DDL = `CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER, price TEXT, at TEXT, ok INTEGER)`;

export async function targetsPhase(env: Env, res: Results, outDir: string): Promise<void> {
  await mariadbM1(env, res, outDir);
  const a = env.A.clientConfig(SOURCE_DB);
  await env.A.createDatabase(SOURCE_DB);
  await exec(
    a,
    `${DDL}; INSERT INTO public.items SELECT i, 'item ' || i, i * 7, i * 1.25, '2024-01-01'::timestamptz + i * interval '1 second', i % 2 = 0 FROM generate_series(1, ${ROWS}) i`,
  );
  await exec(a, 'VACUUM ANALYZE public.items');
  const Database = await loadSqliteDriver();
  const dir = path.join(outDir, 'targets');
  fs.mkdirSync(dir, { recursive: true });
  const lite = new Database(path.join(dir, 'lite.db'), { fileMustExist: false });
  lite.exec(LITE_DDL);
  lite.close();
  const file = path.join(dir, 'targets.yaml');
  fs.writeFileSync(
    file,
    YAML.stringify({
      version: 1,
      name: 'benchtargets',
      databases: { a: { url: env.A.url(SOURCE_DB) }, lite: { type: 'sqlite', path: 'lite.db' } },
      relgroups: { g: { tables: ['public.items'] } },
      syncs: { to_lite: { relgroup: 'g', sources: ['a'], targets: ['lite'], onetimecopy: 'if_empty', autokick: false } },
    }),
  );
  const label = `M1 into SQLite: one ${ROWS.toLocaleString('en-US')}-row transaction`;
  const samples: number[] = [];
  try {
    await withDeadline('targets: apply and copy', 600_000, async () => {
      const ap = await runCli(['apply', '-f', file, '--auto-approve']);
      if (ap.code !== 0) throw new Error(`apply exited ${ap.code}\n${ap.out.trim().split('\n').slice(-10).join('\n')}`);
      const r = await runOnce(file, outDir, 'targets-copy');
      if (r.code !== 0) throw new Error(`the first run (copy) exited ${r.code}\n${r.runner.tail()}`);
    });
    await withDeadline('targets: runs', 1_200_000, async () => {
      for (let rep = 0; rep < Math.max(env.cfg.reps, 3); rep++) {
        await exec(a, `UPDATE public.items SET qty = qty + 1, name = 'renamed ' || id`);
        await exec(a, 'VACUUM');
        const r = await runOnce(file, outDir, `targets-m1-${rep}`);
        const run = r.runner.runsSince(0).find((l) => (l.rows ?? 0) > 0);
        if (r.code !== 0 || !run?.duration_ms) throw new Error(`run --once exited ${r.code}\n${r.runner.tail()}`);
        samples.push(run.duration_ms);
        console.log(`[bench] targets rep ${rep + 1}: ${run.duration_ms} ms for ${run.rows} rows`);
      }
    });
  } catch (e) {
    res.lost('targets.m1.sqlite', label, 'rows/s', e);
    return;
  }
  const bulkMs = await bulkLoad(a, Database, path.join(dir, 'bulk.db'));
  const ms = median(samples);
  const rowsPerS = ROWS / (ms / 1000);
  const bulkRowsPerS = ROWS / (bulkMs / 1000);
  res.add({
    id: 'targets.m1.sqlite',
    label,
    value: rowsPerS,
    unit: 'rows/s',
    ratio: rowsPerS / bulkRowsPerS,
    status: 'ok',
    note: `run ${Math.round(ms)} ms (median of ${samples.length}); better-sqlite3 bulk load of the same rows ${Math.round(bulkMs)} ms (${Math.round(bulkRowsPerS).toLocaleString('en-US')} rows/s); ratio = run / bulk load speed`,
    extra: { samples, bulkMs },
  });
  await redisM1(env, res, outDir);
}

/** The floor: A's rows into an empty SQLite table with better-sqlite3 alone (one transaction, one prepared INSERT); ms, best of 3. */
async function bulkLoad(a: pg.ClientConfig, Database: Awaited<ReturnType<typeof loadSqliteDriver>>, file: string): Promise<number> {
  const c = new pg.Client(a);
  await c.connect();
  const rows = (
    await c.query({
      text: `SELECT id, name, qty::text, price::text, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at, ok::int FROM public.items`,
      rowMode: 'array',
    })
  ).rows as unknown[][];
  await c.end();
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    fs.rmSync(file, { force: true });
    const db = new Database(file, { fileMustExist: false });
    db.pragma('journal_mode = WAL');
    db.exec(LITE_DDL);
    const ins = db.prepare('INSERT INTO items (id, name, qty, price, at, ok) VALUES (?, ?, ?, ?, ?, ?)');
    const t0 = now();
    db.exec('BEGIN');
    for (const r of rows) ins.run(r[0], r[1], BigInt(r[2] as string), r[3], r[4], r[5]);
    db.exec('COMMIT');
    times.push((now() - t0) * 1000);
    db.close();
  }
  return Math.min(...times);
}

/** `bucardo run -f FILE --once` as a child, to its exit. */
async function runOnce(file: string, outDir: string, label: string) {
  const runner = RunnerProcess.start(label, file, outDir, ['--once']);
  const exit = await runner.exited;
  return { code: exit.code, runner };
}
