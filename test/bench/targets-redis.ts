/**
 * Phase `targets`, Redis (issue 14): M1 into a Redis target. The 100,000-row table that
 * targetsPhase made on A (targets.ts), a one-way sync into a throw-away redis-server
 * (test/helpers/redis.ts); per repetition (at least 3) one transaction on A updates every
 * row, then `bucardo run --once` replicates it inside one MULTI/EXEC, and the figure is
 * the median of that run's duration from its log. Beside it, the floor: the same rows
 * (read from A beforehand, untimed) written by node-redis alone as pipelined HSETs. Also
 * recorded: the runner's peak RSS and Redis's memory peak during a run (Redis holds a
 * run's queued commands until EXEC).
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import YAML from 'yaml';
import pg from 'pg';
import type { Env } from './measure.js';
import { exec } from './measure.js';
import { RunnerProcess, rssSampler } from './runner.js';
import { type Results, median } from './report.js';
import { withDeadline, now } from './scope.js';
import { runCli } from '../helpers/cli.js';
import { RedisServer, REDIS_SERVER } from '../helpers/redis.js';

const ROWS = 100_000;
/** The database and table targetsPhase made on A (targets.ts). */
const SOURCE_DB = 'bench_targets';
const ID = 'targets.m1.redis';

interface Client {
  connect(): Promise<unknown>;
  multi(): { addCommand(args: string[]): unknown; execAsPipeline(): Promise<unknown[]> };
  sendCommand(args: string[]): Promise<unknown>;
  destroy(): void;
  on(e: 'error', fn: () => void): unknown;
}

export async function redisM1(env: Env, res: Results, outDir: string): Promise<void> {
  const label = `M1 into Redis: one ${ROWS.toLocaleString('en-US')}-row transaction`;
  if (!fs.existsSync(REDIS_SERVER)) {
    res.lost(ID, label, 'rows/s', new Error(`${REDIS_SERVER} is not installed (apt-get install redis-server)`));
    return;
  }
  const server = new RedisServer();
  const samples: number[] = [];
  let rssKiB = 0;
  let redisPeak = 0;
  let bulkMs = 0;
  try {
    await server.start();
    const a = env.A.clientConfig(SOURCE_DB);
    const dir = path.join(outDir, 'targets');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'targets-redis.yaml');
    fs.writeFileSync(
      file,
      YAML.stringify({
        version: 1,
        name: 'benchredis',
        databases: { a: { url: env.A.url(SOURCE_DB) }, cache: { type: 'redis', url: server.url(0) } },
        relgroups: { g: { tables: ['public.items'] } },
        syncs: { to_redis: { relgroup: 'g', sources: ['a'], targets: ['cache'], onetimecopy: 'if_empty', autokick: false } },
      }),
    );
    await withDeadline('targets redis: apply and copy', 600_000, async () => {
      const ap = await runCli(['apply', '-f', file, '--auto-approve']);
      if (ap.code !== 0) throw new Error(`apply exited ${ap.code}\n${ap.out.trim().split('\n').slice(-10).join('\n')}`);
      const r = await runOnce(file, outDir, 'targets-redis-copy');
      if (r.code !== 0) throw new Error(`the first run (copy) exited ${r.code}\n${r.runner.tail()}`);
    });
    await withRedis(server.url(0), async (c) => {
      await withDeadline('targets redis: runs', 1_200_000, async () => {
        for (let rep = 0; rep < Math.max(env.cfg.reps, 3); rep++) {
          await exec(a, `UPDATE public.items SET qty = qty + 1, name = 'renamed ' || id`);
          await exec(a, 'VACUUM');
          const before = await usedMemory(c, 'used_memory');
          const r = await runOnce(file, outDir, `targets-redis-m1-${rep}`);
          redisPeak = Math.max(redisPeak, (await usedMemory(c, 'used_memory_peak')) - before);
          rssKiB = Math.max(rssKiB, r.rssKiB);
          const run = r.runner.runsSince(0).find((l) => (l.rows ?? 0) > 0);
          if (r.code !== 0 || !run?.duration_ms) throw new Error(`run --once exited ${r.code}\n${r.runner.tail()}`);
          samples.push(run.duration_ms);
          console.log(`[bench] targets redis rep ${rep + 1}: ${run.duration_ms} ms for ${run.rows} rows`);
        }
      });
    });
    bulkMs = await bulkLoad(a, server.url(1));
  } catch (e) {
    res.lost(ID, label, 'rows/s', e);
    return;
  } finally {
    await server.remove();
  }
  const ms = median(samples);
  const rowsPerS = ROWS / (ms / 1000);
  const bulkRowsPerS = ROWS / (bulkMs / 1000);
  const mib = (b: number) => Math.round(b / 1048576);
  res.add({
    id: ID,
    label,
    value: rowsPerS,
    unit: 'rows/s',
    ratio: rowsPerS / bulkRowsPerS,
    status: 'ok',
    note: `run ${Math.round(ms)} ms (median of ${samples.length}); node-redis pipelined HSET of the same rows ${Math.round(bulkMs)} ms (${Math.round(bulkRowsPerS).toLocaleString('en-US')} rows/s); runner peak RSS ${Math.round(rssKiB / 1024)} MiB, Redis memory peak +${mib(redisPeak)} MiB during a run; ratio = run / bulk load speed`,
    extra: { samples, bulkMs, runnerPeakRssKiB: rssKiB, redisPeakBytes: redisPeak },
  });
}

async function withRedis<T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const { createClient } = createRequire(import.meta.url)('redis') as { createClient(o: { url: string }): Client };
  const c = createClient({ url });
  c.on('error', () => {});
  await c.connect();
  try {
    return await fn(c);
  } finally {
    c.destroy();
  }
}

/** A number of INFO memory (used_memory, used_memory_peak), in bytes. */
async function usedMemory(c: Client, field: string): Promise<number> {
  const info = String(await c.sendCommand(['INFO', 'memory']));
  return Number(new RegExp(`^${field}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
}

/** The floor: A's rows as the runner maps them, HSET by node-redis alone, 5,000 per pipeline (one write each); ms, best of 3. */
async function bulkLoad(a: pg.ClientConfig, url: string): Promise<number> {
  const c = new pg.Client(a);
  await c.connect();
  const rows = (
    await c.query({
      text: `SELECT id::text, name, qty::text, price::text, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at, ok::int::text FROM public.items`,
      rowMode: 'array',
    })
  ).rows as string[][];
  await c.end();
  const cols = ['id', 'name', 'qty', 'price', 'at', 'ok'];
  return withRedis(url, async (r) => {
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      await r.sendCommand(['FLUSHDB']);
      const t0 = now();
      for (let at = 0; at < rows.length; at += 5_000) {
        const pipe = r.multi();
        for (const row of rows.slice(at, at + 5_000)) pipe.addCommand(['HSET', `public.items:${row[0]}`, ...cols.flatMap((col, j) => [col, row[j]])]);
        await pipe.execAsPipeline();
      }
      times.push((now() - t0) * 1000);
    }
    return Math.min(...times);
  });
}

/** `bucardo run -f FILE --once` as a child, to its exit, with its peak RSS. */
async function runOnce(file: string, outDir: string, label: string) {
  const runner = RunnerProcess.start(label, file, outDir, ['--once']);
  const rss = rssSampler(runner);
  const exit = await runner.exited;
  return { code: exit.code, runner, rssKiB: rss.stop() };
}
