/**
 * `bucardo run`: the long-lived runner (or `--once`). Signals are wired here: the first
 * SIGINT/SIGTERM lets current runs finish or roll back and exits 0; a second one exits at
 * once (graphile-worker's src/signals.ts does the same).
 */
import type { Command } from 'commander';
import { topologyPath, action, EXIT } from '../common.js';
import { fileOption, formatOption, collectValues, parsePort, parseCount } from '../flags.js';
import { DEFAULT_MAX_CONNECTED_SYNCS } from '../../engine/runner/slots.js';
import { loadTopology } from '../../engine/topology/load.js';
import { Runner } from '../../engine/runner/runner.js';
import { formatLog, type LogFormat } from '../../engine/runner/log.js';
import { Metrics, PendingPoller, serveMetrics, type MetricsServer } from '../../engine/runner/metrics.js';
import { BucardoError } from '../../engine/errors.js';
import { redactSecrets } from '../../engine/connect.js';

interface RunOpts {
  file?: string;
  once?: boolean;
  sync: string[];
  logFormat: LogFormat;
  metricsPort?: number;
  maxConnectedSyncs?: number;
}

export function register(program: Command): void {
  fileOption(program.command('run'))
    .description('run the syncs: replicate changes as they come (every enabled sync, or those named with --sync)')
    .option('--once', 'run each selected sync until nothing is pending, then exit (1 if a sync failed)')
    .option('--sync <name>', 'run only this sync (repeatable)', collectValues, [] as string[])
    .addOption(formatOption(['text', 'json'], 'log lines as text or JSON', '--log-format <format>'))
    .option(
      '--metrics-port <port>',
      'serve Prometheus metrics on this port: GET /metrics, and GET /healthz (200 up; 503 shutting down or every sync failing); see docs/metrics.md',
      parsePort('--metrics-port'),
    )
    .option(
      '--max-connected-syncs <n>',
      `at most this many syncs keep their connections open at once (default ${DEFAULT_MAX_CONNECTED_SYNCS}); the others connect when they run, taking the place of the one idle longest`,
      parseCount('--max-connected-syncs', 'a number of syncs'),
    )
    .action(action(runCommand));
}

async function runCommand(opts: RunOpts): Promise<number> {
  const topology = loadTopology(topologyPath(opts));
  const write = (line: string) => process.stdout.write(`${redactSecrets(line)}\n`);
  const port = opts.metricsPort ?? null;
  let metrics: Metrics | null = null;
  const runner = new Runner({
    topology,
    syncs: opts.sync,
    once: Boolean(opts.once),
    log: (e) => {
      metrics?.observeLog(e);
      write(formatLog(e, opts.logFormat));
    },
    onRun: (s, r, e) => metrics?.record(s, r, e),
    maxConnectedSyncs: opts.maxConnectedSyncs,
  });
  // metrics: served from before the first run until every run finished or rolled back
  let server: MetricsServer | null = null;
  let poller: PendingPoller | null = null;
  if (port !== null) {
    metrics = new Metrics({ topology: topology.name, runner: runner.name });
    metrics.addSyncs(runner.contexts(), () => runner.state());
    try {
      server = await serveMetrics(metrics, port);
    } catch (e) {
      throw new BucardoError('metrics_port', `cannot serve metrics on port ${port}: ${(e as Error).message}`, { hint: 'pick a free port' });
    }
    poller = new PendingPoller(metrics, runner.contexts());
    poller.start();
  }
  let signals = 0;
  let stopReason: string | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      write(formatLog({ event: 'stop', level: 'info', reason: `second ${sig}: exiting without waiting` }, opts.logFormat));
      process.exit(1);
    }
    stopReason = `${sig}`;
    metrics?.setShuttingDown();
    void runner.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    runner.start();
    const ok = await runner.finished();
    write(formatLog({ event: 'stop', level: 'info', reason: stopReason ?? (ok ? 'every sync caught up' : 'a sync failed') }, opts.logFormat));
    if (stopReason) return EXIT.ok;
    return ok ? EXIT.ok : EXIT.error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    metrics?.setShuttingDown();
    await poller?.stop();
    await server?.close();
  }
}
