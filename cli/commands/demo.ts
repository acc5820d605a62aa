/**
 * `bucardo demo`: three embedded PostgreSQL clusters (east and west take writes,
 * warehouse receives), a shop schema, its topology, plan and apply, the runner, live writes
 * with deliberate conflicts, and at the end (or on Ctrl-C) a compare verdict; then
 * everything is stopped and removed (unless --keep). Works offline and as root.
 */
import type { Command } from 'commander';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { action, EXIT } from '../common.js';
import { parseCount, parseSeconds } from '../flags.js';
import { BucardoError } from '../../engine/errors.js';
import { startClusters, releaseSignals, type ClusterGroup } from '../demo/clusters.js';
import { SHOP_DDL, SHOP_SEED, shopTopology, WriteDriver } from '../demo/shop.js';
import { topologySchemaPath } from '../../engine/paths.js';
import { loadTopology } from '../../engine/topology/load.js';
import { applyFlow } from '../applyflow.js';
import { readStatus, type SyncStatus } from '../../engine/runner/status.js';
import { kick } from '../../engine/runner/kick.js';
import { compareSync } from '../../engine/compare/index.js';
import { renderCompareText } from '../../engine/compare/render.js';
import { clientConfig } from '../../engine/connect.js';
import { qualify } from '../../engine/sql/ident.js';
import { schemaName } from '../../engine/objectnames.js';
import type { Topology } from '../../engine/topology/types.js';

interface DemoOptions {
  keep?: boolean;
  duration: number;
  rate: number;
}

const SYNC = 'shop_mm';

export function register(program: Command): void {
  program
    .command('demo')
    .description('watch multi-source replication on three throw-away embedded PostgreSQL clusters (nothing to install)')
    .option('--duration <seconds>', 'how long to drive writes before the compare verdict', parseSeconds('--duration', 'a number of seconds >= 1', 1), 30)
    .option('--rate <n>', 'writes per second on each source', parseCount('--rate', 'a whole number of writes per second >= 1'), 40)
    .option('--keep', 'leave the clusters and the runner up at the end, print how to connect, and wait for Ctrl-C')
    .action(action((opts: DemoOptions) => demo(opts)));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Ctrl-C while the demo runs: the first wraps up (compare, then stop), the second stops at once. */
interface Interrupts {
  count: number;
  /** Ends the wait in progress, so the demo notices a signal at once. */
  wake: () => void;
}

async function demo(opts: DemoOptions): Promise<number> {
  const { duration, rate } = opts;
  const tty = Boolean(process.stdout.isTTY);
  const say = (s: string) => process.stdout.write(`${s}\n`);

  let group: ClusterGroup | null = null;
  let runner: ChildProcess | null = null;
  let driver: WriteDriver | null = null;
  const ints: Interrupts = { count: 0, wake: () => {} };
  const onSignal = () => {
    ints.count++;
    ints.wake();
    if (ints.count > 1) say('\nStopping now.');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    say('bucardo demo: multi-source replication between two writable databases (east, west) and a read-only one (warehouse)\n');
    say('1. Starting three embedded PostgreSQL clusters (in a temporary folder, removed at the end)...');
    group = await startClusters(['east', 'west', 'warehouse'], { auth: 'trust' });
    releaseSignals(); // Ctrl-C means "wrap up": compare, then stop and remove everything (finally below)
    const { urls, dir, file } = await makeShop(group, say);

    say('2. bucardo plan + apply: capture triggers on the sources, metadata everywhere (one transaction per database)\n');
    const topology = loadTopology(file);
    const applied = await applyFlow(topology, file, { destroy: false, autoApprove: true });
    if (applied !== EXIT.ok) throw new BucardoError('demo_failed', 'the demo topology did not apply');

    say('\n3. Starting the runner (bucardo run) and writing on east and west at once, some rows on both (conflicts)...\n');
    const logFile = path.join(dir, 'runner.log');
    runner = startRunner(file, logFile);
    const runnerExit = new Promise<number | null>((r) => runner!.on('exit', (code) => r(code)));

    const sources = ['east', 'west'].map((n, i) => ({ name: n, config: clientConfig(topology.databases.get(n)!, 'bucardo demo writer'), parity: i as 0 | 1 }));
    driver = new WriteDriver(sources, rate);
    await driver.start();
    const view = new LiveView(topology, tty, say);
    await showLive(view, driver, runner, logFile, duration, tty, ints);
    await driver.stop();
    driver = null;
    if (tty) view.finish();
    const writes = Object.entries(view.lastWrites)
      .map(([n, w]) => `${w} on ${n}`)
      .join(', ');

    say(`\n4. Writes stopped (${writes}). Waiting for the runner to catch up...`);
    await waitForCatchUp(topology, ints, say);

    say('\n5. bucardo compare shop_mm: every table, on every database, by key ranges and hashes\n');
    const result = await compareSync(topology, SYNC);
    say(
      renderCompareText(result)
        .trimEnd()
        .split('\n')
        .map((l) => `   ${l}`)
        .join('\n'),
    );
    say(result.equal ? '\nVerdict: east, west and warehouse hold exactly the same rows.' : '\nVerdict: the databases differ (see above).');

    if (opts.keep && ints.count < 2) await stayUp(urls, file, logFile, ints, say);
    runner.kill('SIGTERM');
    await Promise.race([runnerExit, sleep(15_000)]);
    return result.equal ? EXIT.ok : EXIT.error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await driver?.stop().catch(() => {});
    if (runner && runner.exitCode === null) {
      runner.kill('SIGKILL');
    }
    if (group) {
      say('\nStopping the clusters and removing their folder.');
      await group.stopAll();
    }
  }
}

/** The shop database with its seed rows on every cluster, and the demo's topology file next to them. */
async function makeShop(
  group: ClusterGroup,
  say: (s: string) => void,
): Promise<{ urls: { east: string; west: string; warehouse: string }; dir: string; file: string }> {
  for (const c of group.clusters) {
    await c.createDatabase('shop');
    await c.query('shop', SHOP_DDL + SHOP_SEED);
  }
  const urls = Object.fromEntries(group.clusters.map((c) => [c.name, c.url('shop')])) as { east: string; west: string; warehouse: string };
  const dir = path.join(group.baseDir, 'demo');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'bucardo.yaml');
  fs.writeFileSync(file, shopTopology(urls, topologySchemaPath()));
  say(`   east, west and warehouse each hold a shop schema (customers, products, orders, order_lines) with the same seed rows.`);
  say(`   The topology: ${file}\n`);
  return { urls, dir, file };
}

/** `bucardo run` on the demo topology as a child process, its output in `logFile`. */
function startRunner(file: string, logFile: string): ChildProcess {
  const log = fs.openSync(logFile, 'a');
  return spawn(process.execPath, [process.argv[1], 'run', '-f', file], { stdio: ['ignore', log, log], env: process.env });
}

/** Redraws the live view while the writes go on, until `duration` or Ctrl-C; the runner exiting meanwhile fails the demo. */
async function showLive(
  view: LiveView,
  driver: WriteDriver,
  runner: ChildProcess,
  logFile: string,
  duration: number,
  tty: boolean,
  ints: Interrupts,
): Promise<void> {
  const started = Date.now();
  while (!ints.count && Date.now() - started < duration * 1000) {
    await view.draw(driver, (Date.now() - started) / 1000, duration);
    await new Promise<void>((r) => {
      ints.wake = r;
      setTimeout(r, tty ? 1000 : 3000);
    });
    if (runner.exitCode !== null) throw new BucardoError('demo_failed', `the runner exited (code ${runner.exitCode}); its log is in ${logFile}`);
  }
}

/** Kicks until nothing is pending (60 s at most, or a second Ctrl-C), then tells what is left and the conflicts resolved. */
async function waitForCatchUp(topology: Topology, ints: Interrupts, say: (s: string) => void): Promise<void> {
  // A kick with --wait semantics: returns when a run that started after it has finished.
  const deadline = Date.now() + 60_000;
  let status: SyncStatus | undefined;
  for (;;) {
    await kick(topology, SYNC, 20).catch(() => undefined);
    status = (await readStatus(topology, SYNC)).report.syncs[0];
    if (status.pending === 0 || Date.now() > deadline || ints.count > 1) break;
  }
  say(`   pending changes: ${status?.pending ?? '?'}; conflicts resolved in all: ${status?.conflicts_total ?? '?'} (strategy: latest)`);
}

/** --keep: how to look around, then wait for the next Ctrl-C. */
async function stayUp(urls: Record<string, string>, file: string, logFile: string, ints: Interrupts, say: (s: string) => void): Promise<void> {
  say('\nThe clusters and the runner stay up. Explore with psql and the other commands:');
  for (const [n, u] of Object.entries(urls)) say(`   ${n.padEnd(9)} psql ${u}`);
  say(`   bucardo status -f ${file}`);
  say(`   bucardo compare shop_mm -f ${file}`);
  say(`   runner log: ${logFile}`);
  say('Press Ctrl-C to stop everything and remove it.');
  const before = ints.count;
  while (ints.count === before)
    await new Promise<void>((r) => {
      ints.wake = r;
    });
}

/** What the demo shows while it runs: per sync rows/s, lag, pending, conflicts and winners. */
class LiveView {
  private lines = 0;
  private prevRows: { at: number; rows: number } | null = null;
  lastWrites: Record<string, number> = {};
  private warehouse: pg.Pool;

  constructor(
    private readonly topology: Topology,
    private readonly tty: boolean,
    private readonly say: (s: string) => void,
  ) {
    this.warehouse = new pg.Pool({ ...clientConfig(topology.databases.get('warehouse')!, 'bucardo demo view'), max: 1 });
    this.warehouse.on('error', () => {});
  }

  async draw(driver: WriteDriver, elapsed: number, duration: number): Promise<void> {
    this.lastWrites = { ...driver.stats.writes };
    const st = (await readStatus(this.topology, SYNC).catch(() => null))?.report.syncs[0];
    const schema = schemaName(this.topology.name);
    const q = await this.warehouse
      .query<{ rows: string; recent: { table_name: string; key: unknown; winner: string | null }[] | null }>(
        `SELECT (SELECT coalesce(sum(rows), 0) FROM ${qualify(schema, 'run')} WHERE sync = $1)::text AS rows,
                (SELECT json_agg(c) FROM (SELECT table_name, key, winner FROM ${qualify(schema, 'conflict')} WHERE sync = $1 ORDER BY at DESC LIMIT 4) c) AS recent`,
        [SYNC],
      )
      .catch(() => null);
    const rows = Number(q?.rows[0]?.rows ?? 0);
    const now = Date.now();
    const rate = this.prevRows && now > this.prevRows.at ? ((rows - this.prevRows.rows) * 1000) / (now - this.prevRows.at) : 0;
    this.prevRows = { at: now, rows };
    const writes = Object.entries(driver.stats.writes)
      .map(([n, w]) => `${n} ${w}`)
      .join(', ');
    const lag = st?.lag_seconds == null ? '-' : `${st.lag_seconds.toFixed(1)}s`;
    if (!this.tty) {
      this.say(
        `   ${elapsed.toFixed(0)}s: writes ${writes}; sync ${SYNC} ${st?.state ?? '?'}, ${rate.toFixed(0)} rows/s, lag ${lag}, pending ${st?.pending ?? '?'}, conflicts ${st?.conflicts_total ?? 0}`,
      );
      return;
    }
    const out: string[] = [];
    out.push(`\x1b[1mlive\x1b[0m  ${elapsed.toFixed(0)}s of ${duration}s   writes so far: ${writes}   (Ctrl-C to stop early)`);
    out.push('');
    out.push(`  ${'sync'.padEnd(10)}${'state'.padEnd(10)}${'rows/s'.padStart(8)}${'lag'.padStart(8)}${'pending'.padStart(9)}${'conflicts'.padStart(11)}`);
    out.push(
      `  ${SYNC.padEnd(10)}${(st?.state ?? '?').padEnd(10)}${rate.toFixed(0).padStart(8)}${lag.padStart(8)}${String(st?.pending ?? '?').padStart(9)}${String(st?.conflicts_total ?? 0).padStart(11)}`,
    );
    out.push('');
    out.push('  latest conflicts (strategy latest: the newest change wins):');
    const recent = q?.rows[0]?.recent ?? [];
    for (let i = 0; i < 4; i++) {
      const c = recent[i];
      out.push(c ? `    ${c.table_name} ${JSON.stringify(c.key)} -> ${c.winner ?? 'skipped'}` : '');
    }
    if (this.lines) process.stdout.write(`\x1b[${this.lines}A`);
    process.stdout.write(`${out.map((l) => `\x1b[2K${l}`).join('\n')}\n`);
    this.lines = out.length;
  }

  finish(): void {
    void this.warehouse.end().catch(() => {});
  }
}
