/**
 * Prometheus metrics of a runner (`--metrics-port`): runs, rows, conflicts and errors per
 * sync as counters, and per sync the seconds since its last successful run. Text
 * exposition format 0.0.4, served by node:http; no dependency.
 */
import http from 'node:http';
import type { RunResult } from './types.js';

interface SyncMetrics {
  runs: number;
  rows: number;
  conflicts: number;
  errors: number;
  lastOk: number | null;
}

export class Metrics {
  private syncs = new Map<string, SyncMetrics>();

  record(sync: string, r: RunResult | null, error: unknown): void {
    const m = this.syncs.get(sync) ?? { runs: 0, rows: 0, conflicts: 0, errors: 0, lastOk: null };
    this.syncs.set(sync, m);
    if (error || !r) {
      m.errors++;
      return;
    }
    if (r.wrote) m.runs++;
    m.rows += r.rows;
    m.conflicts += r.conflicts;
    m.lastOk = r.finished.getTime();
  }

  render(now = Date.now()): string {
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string, value: (m: SyncMetrics) => number | null) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [s, m] of this.syncs) {
        const v = value(m);
        if (v !== null) lines.push(`${name}{sync="${s.replace(/["\\\n]/g, (c) => (c === '\n' ? '\\n' : '\\' + c))}"} ${v}`);
      }
    };
    metric('bucardo_runs_total', 'counter', 'Runs that replicated something.', (m) => m.runs);
    metric('bucardo_rows_total', 'counter', 'Rows replicated.', (m) => m.rows);
    metric('bucardo_conflicts_total', 'counter', 'Conflicts resolved (or skipped).', (m) => m.conflicts);
    metric('bucardo_errors_total', 'counter', 'Failed runs.', (m) => m.errors);
    metric('bucardo_lag_seconds', 'gauge', 'Seconds since the last successful run.', (m) => (m.lastOk === null ? null : (now - m.lastOk) / 1000));
    return lines.join('\n') + '\n';
  }
}

/** Serves GET /metrics on 127.0.0.1:port... and every interface, like other exporters. */
export function serveMetrics(metrics: Metrics, port: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.url === '/metrics' || req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(metrics.render());
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => resolve(server));
  });
}
