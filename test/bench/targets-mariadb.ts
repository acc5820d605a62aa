/**
 * Phase `targets`, MariaDB's part (issue 14): M1 into a MariaDB target. A throwaway
 * mariadbd (test/helpers/mariadb.ts) and its own 100,000-row table on A; per repetition (at
 * least 3) one transaction on A updates every row, then `bucardo run --once` replicates
 * it, and the figure is the median of that run's duration from its log. Beside it, the
 * floor: the same rows (read from A beforehand, untimed) bulk-loaded into an empty InnoDB
 * table by mysql2 alone, multi-row INSERTs of 5,000 rows in one transaction. Both write
 * into the same server, so the ratio is what the run costs on top of MariaDB's own write
 * speed: reading the winners by COPY, mapping each value, upserts instead of inserts.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import pg from 'pg';
import mysql from 'mysql2/promise';
import type { Env } from './measure.js';
import { exec } from './measure.js';
import { RunnerProcess } from './runner.js';
import { type Results, median } from './report.js';
import { withDeadline, now } from './scope.js';
import { runCli } from '../helpers/cli.js';
import { MARIADBD, MariadbServer } from '../helpers/mariadb.js';

const ROWS = 100_000;
const SOURCE_DB = 'bench_targets_mariadb';
const DDL = `CREATE TABLE public.items (id integer PRIMARY KEY, name text NOT NULL, qty bigint, price numeric(12,2), at timestamptz, ok boolean)`;
const MARIA_DDL =
  'CREATE TABLE items (id INT PRIMARY KEY, name LONGTEXT NOT NULL, qty BIGINT, price DECIMAL(12,2), at DATETIME(6), ok BOOLEAN) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4';
const ID = 'targets.m1.mariadb';
const LABEL = `M1 into MariaDB: one ${ROWS.toLocaleString('en-US')}-row transaction`;

export async function mariadbM1(env: Env, res: Results, outDir: string): Promise<void> {
  if (!fs.existsSync(MARIADBD)) {
    res.lost(ID, LABEL, 'rows/s', new Error(`${MARIADBD} is not installed (apt-get install mariadb-server)`));
    return;
  }
  let server: MariadbServer | null = null;
  try {
    server = await MariadbServer.start();
    await measure(env, res, outDir, server);
  } catch (e) {
    res.lost(ID, LABEL, 'rows/s', e);
  } finally {
    await server?.destroy();
  }
}

async function measure(env: Env, res: Results, outDir: string, server: MariadbServer): Promise<void> {
  const a = env.A.clientConfig(SOURCE_DB);
  await env.A.createDatabase(SOURCE_DB);
  await exec(
    a,
    `${DDL}; INSERT INTO public.items SELECT i, 'item ' || i, i * 7, i * 1.25, '2024-01-01'::timestamptz + i * interval '1 second', i % 2 = 0 FROM generate_series(1, ${ROWS}) i`,
  );
  await exec(a, 'VACUUM ANALYZE public.items');
  const m = await server.fresh('bench', MARIA_DDL);
  const dir = path.join(outDir, 'targets-mariadb');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'targets-mariadb.yaml');
  fs.writeFileSync(
    file,
    YAML.stringify({
      version: 1,
      name: 'benchmaria',
      databases: { a: { url: env.A.url(SOURCE_DB) }, maria: m.entry },
      relgroups: { g: { tables: ['public.items'] } },
      syncs: { to_maria: { relgroup: 'g', sources: ['a'], targets: ['maria'], onetimecopy: 'if_empty', autokick: false } },
    }),
  );
  const samples: number[] = [];
  await withDeadline('targets: mariadb apply and copy', 600_000, async () => {
    const ap = await runCli(['apply', '-f', file, '--auto-approve']);
    if (ap.code !== 0) throw new Error(`apply exited ${ap.code}\n${ap.out.trim().split('\n').slice(-10).join('\n')}`);
    const r = await runOnce(file, outDir, 'targets-mariadb-copy');
    if (r.code !== 0) throw new Error(`the first run (copy) exited ${r.code}\n${r.runner.tail()}`);
  });
  await withDeadline('targets: mariadb runs', 1_200_000, async () => {
    for (let rep = 0; rep < Math.max(env.cfg.reps, 3); rep++) {
      await exec(a, `UPDATE public.items SET qty = qty + 1, name = 'renamed ' || id`);
      await exec(a, 'VACUUM');
      const r = await runOnce(file, outDir, `targets-mariadb-m1-${rep}`);
      const run = r.runner.runsSince(0).find((l) => (l.rows ?? 0) > 0);
      if (r.code !== 0 || !run?.duration_ms) throw new Error(`run --once exited ${r.code}\n${r.runner.tail()}`);
      samples.push(run.duration_ms);
      console.log(`[bench] targets mariadb rep ${rep + 1}: ${run.duration_ms} ms for ${run.rows} rows`);
    }
  });
  const bulkMs = await bulkLoad(a, server);
  const ms = median(samples);
  const rowsPerS = ROWS / (ms / 1000);
  const bulkRowsPerS = ROWS / (bulkMs / 1000);
  res.add({
    id: ID,
    label: LABEL,
    value: rowsPerS,
    unit: 'rows/s',
    ratio: rowsPerS / bulkRowsPerS,
    status: 'ok',
    note: `run ${Math.round(ms)} ms (median of ${samples.length}); mysql2 bulk load of the same rows (5,000-row INSERTs, one transaction) ${Math.round(bulkMs)} ms (${Math.round(bulkRowsPerS).toLocaleString('en-US')} rows/s); ratio = run / bulk load speed`,
    extra: { samples, bulkMs },
  });
}

/** The floor: A's rows into an empty InnoDB table with mysql2 alone (multi-row INSERTs, one transaction); ms, best of 3. */
async function bulkLoad(a: pg.ClientConfig, server: MariadbServer): Promise<number> {
  const c = new pg.Client(a);
  await c.connect();
  const rows = (
    await c.query({
      text: `SELECT id, name, qty::text, price::text, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS at, ok::int FROM public.items`,
      rowMode: 'array',
    })
  ).rows as unknown[][];
  await c.end();
  const m = await server.fresh('bulk', MARIA_DDL);
  const conn = await mysql.createConnection({ ...m.connection, charset: 'utf8mb4' });
  const times: number[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      await conn.query('TRUNCATE TABLE items');
      const t0 = now();
      await conn.query('START TRANSACTION');
      for (let at = 0; at < rows.length; at += 5_000)
        await conn.query('INSERT INTO items (id, name, qty, price, at, ok) VALUES ?', [rows.slice(at, at + 5_000)]);
      await conn.query('COMMIT');
      times.push((now() - t0) * 1000);
    }
  } finally {
    await conn.end();
  }
  return Math.min(...times);
}

/** `bucardo run -f FILE --once` as a child, to its exit. */
async function runOnce(file: string, outDir: string, label: string) {
  const runner = RunnerProcess.start(label, file, outDir, ['--once']);
  const exit = await runner.exited;
  return { code: exit.code, runner };
}
