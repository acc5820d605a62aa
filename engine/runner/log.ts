/**
 * Log entries of the runner and their two renderings: one line of text, or one JSON
 * object per line (`--log-format json`). The engine builds entries; the CLI prints them.
 */
import type { RunResult, ConflictRecord } from './types.js';

export type LogEntry =
  | { event: 'run'; level: 'info'; result: RunResult }
  | { event: 'run_failed'; level: 'error'; sync: string; runId: string; error: string; code: string; retryMs: number | null; durationMs: number }
  | { event: 'conflict'; level: 'warn'; sync: string; conflict: ConflictRecord }
  | { event: 'conflicts_more'; level: 'warn'; sync: string; more: number }
  | { event: 'busy'; level: 'info'; sync: string }
  | { event: 'skipped'; level: 'info'; sync: string; runId: string; reason: string }
  | { event: 'hook'; level: 'info' | 'warn'; sync: string; hook: string; message: string }
  | { event: 'listen_error'; level: 'warn'; database: string; error: string; retryMs: number }
  | { event: 'maintenance_failed'; level: 'warn'; sync: string; error: string }
  | { event: 'start'; level: 'info'; syncs: string[]; once: boolean }
  | { event: 'reload'; level: 'info'; sync: string; change: 'added' | 'removed' | 'enabled' | 'disabled' | 'changed'; detail: string }
  | { event: 'reload_failed'; level: 'warn'; sync: string; error: string }
  | { event: 'stop'; level: 'info'; reason: string };

export type LogFormat = 'text' | 'json';

/** Conflicts logged one per line per run; the rest are summed up in one line. */
export const CONFLICT_LOG_CAP = 100;
/** Conflict records kept per run (delta.ts; all are counted; the rest are not recorded one by one). */
export const CONFLICT_DETAIL_CAP = 10_000;

export function formatLog(e: LogEntry, format: LogFormat, now = new Date()): string {
  const time = now.toISOString();
  if (format === 'json') return JSON.stringify({ time, ...flatten(e) });
  switch (e.event) {
    case 'run': {
      const r = e.result;
      const tables = Object.entries(r.rowsByTable)
        .map(([t, n]) => `${t}=${n}`)
        .join(' ');
      const copied = r.copied.length ? ` copied=${r.copied.join(',')}` : '';
      const deferred = r.deferred
        ? ` deferred=${Object.entries(r.deferred)
            .map(([t, n]) => `${t}=${n}`)
            .join(',')}`
        : '';
      return `${time} INFO  run sync=${r.sync} rows=${r.rows}${tables ? ` (${tables})` : ''} conflicts=${r.conflicts}${copied}${deferred} duration=${r.finished.getTime() - r.started.getTime()}ms run_id=${r.runId}`;
    }
    case 'run_failed':
      return `${time} ERROR run sync=${e.sync} failed after ${e.durationMs}ms: ${e.error}${e.retryMs !== null ? ` (retry in ${(e.retryMs / 1000).toFixed(1)}s)` : ''}`;
    case 'conflict': {
      const c = e.conflict;
      return `${time} WARN  conflict sync=${e.sync} table=${c.table} key=${JSON.stringify(c.key)} winner=${c.winner ?? (c.merged ? '(merged)' : '(skipped)')} changed_on=${c.changed.map((x) => x.database).join(',')}`;
    }
    case 'conflicts_more':
      return `${time} WARN  conflict sync=${e.sync} ... and ${e.more} more conflicts (recorded in the conflict table up to ${CONFLICT_DETAIL_CAP} per run)`;
    case 'busy':
      return `${time} INFO  busy sync=${e.sync}: another runner is running it; trying again later`;
    case 'skipped':
      return `${time} INFO  skipped sync=${e.sync} run_id=${e.runId}: before_sync: ${e.reason} (nothing consumed)`;
    case 'hook':
      return `${time} ${e.level === 'warn' ? 'WARN ' : 'INFO '} hook sync=${e.sync} hook=${e.hook}: ${e.message}`;
    case 'listen_error':
      return `${time} WARN  listen database=${e.database}: ${e.error} (reconnecting in ${(e.retryMs / 1000).toFixed(1)}s)`;
    case 'maintenance_failed':
      return `${time} WARN  maintenance sync=${e.sync}: ${e.error} (the next run does it again)`;
    case 'reload':
      return `${time} INFO  reload sync=${e.sync}: ${e.change} (${e.detail})`;
    case 'reload_failed':
      return `${time} WARN  reload sync=${e.sync}: ${e.error}`;
    case 'start':
      return `${time} INFO  runner started: ${e.syncs.length ? e.syncs.join(', ') : 'no enabled syncs'}${e.once ? ' (--once)' : ''}`;
    case 'stop':
      return `${time} INFO  runner stopped: ${e.reason}`;
    default: {
      const never: never = e;
      return JSON.stringify(never);
    }
  }
}

function flatten(e: LogEntry): Record<string, unknown> {
  if (e.event === 'run') {
    const r = e.result;
    return {
      level: e.level,
      event: 'run',
      sync: r.sync,
      run_id: r.runId,
      rows: r.rows,
      rows_by_table: r.rowsByTable,
      conflicts: r.conflicts,
      copied: r.copied,
      ...(r.deferred ? { deferred: r.deferred } : {}),
      started: r.started.toISOString(),
      finished: r.finished.toISOString(),
      duration_ms: r.finished.getTime() - r.started.getTime(),
    };
  }
  return { ...e };
}
