/**
 * examples/grafana/bucardo.json queries only what the runner exports: every metric name
 * in every panel's PromQL (and in the `sync` variable) is a series of a real Metrics
 * registry's exposition (a histogram's _bucket/_sum/_count included), and every label a
 * query filters, groups or shows by is a label of the metrics it reads. A renamed metric
 * or label then breaks this test, not an operator's dashboard.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../engine/paths.js';
import { Metrics } from '../../engine/runner/metrics.js';
import type { RunResult } from '../../engine/runner/types.js';

interface Target {
  expr: string;
  legendFormat?: string;
}
interface Panel {
  title: string;
  type: string;
  datasource: { type: string; uid: string };
  targets: Target[];
}
interface Dashboard {
  panels: Panel[];
  templating: { list: { name: string; type: string; query: string | { query: string } }[] };
}

const dashboard = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'examples', 'grafana', 'bucardo.json'), 'utf8')) as Dashboard;

/** PromQL functions the dashboard may call; an unknown one is a typo (or a metric). */
const FUNCTIONS = new Set([
  'rate',
  'irate',
  'increase',
  'delta',
  'deriv',
  'sum',
  'max',
  'min',
  'avg',
  'count',
  'topk',
  'bottomk',
  'max_over_time',
  'min_over_time',
  'avg_over_time',
  'histogram_quantile',
  'time',
  'vector',
  'scalar',
  'abs',
  'clamp_min',
  'label_values',
]);
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);
/** Labels Prometheus adds to every scraped series (the scrape target's), not the runner. */
const TARGET_LABELS = new Set(['instance', 'job']);

/** A series reference: a metric name and the labels its matcher names. */
interface Selector {
  metric: string;
  labels: string[];
}

interface Query {
  selectors: Selector[];
  /** Labels of by (...), on (...) and the like, and of label_values(metric, label). */
  grouping: string[];
  functions: string[];
}

/** Parses the parts of a PromQL expression that name metrics, labels and functions. */
function parseQuery(expr: string): Query {
  let s = expr
    .replace(/\$\{[^}]*\}|\$\w+/g, '') // Grafana variables ($__rate_interval, ${DS_PROMETHEUS})
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\[[^\]]*\]/g, '');
  const grouping: string[] = [];
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_, _kw, list: string) => {
    grouping.push(
      ...list
        .split(',')
        .map((l) => l.trim())
        .filter(Boolean),
    );
    return ' ';
  });
  const lv = /^\s*label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/.exec(s);
  if (lv) return { selectors: [{ metric: lv[1]!, labels: [] }], grouping: [lv[2]!], functions: ['label_values'] };
  const selectors: Selector[] = [];
  const functions: string[] = [];
  const token = /([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\}|\()?|\{[^}]*\}|\d[\w.]*/g;
  for (const m of s.matchAll(token)) {
    if (m[0].startsWith('{')) throw new Error(`a selector without a metric name in ${expr}`);
    const [, name, next] = m;
    if (name === undefined || KEYWORDS.has(name)) continue;
    if (next === '(') {
      functions.push(name);
      continue;
    }
    const labels = next ? [...next.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]!) : [];
    selectors.push({ metric: name, labels });
  }
  return { selectors, grouping, functions };
}

/** Every series name of an exposition text, with the label names it shows. */
function exportedSeries(text: string): Map<string, Set<string>> {
  const series = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line);
    if (!m) continue;
    const labels = series.get(m[1]!) ?? new Set<string>();
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(l[1]!);
    series.set(m[1]!, labels);
  }
  return series;
}

/** A registry with every series present: a run of each result, pending and lag, a LISTEN error. */
async function renderFullRegistry(): Promise<Map<string, Set<string>>> {
  const m = new Metrics({ topology: 't', runner: 'h:1' });
  const now = new Date();
  const ok: RunResult & { rowsByDatabase: Record<string, number> } = {
    sync: 's1',
    runId: 'r',
    wrote: true,
    rowsByTable: { 'public.items': 3 },
    rowsByDatabase: { b: 3 },
    rows: 3,
    conflicts: 1,
    started: now,
    finished: now,
    copied: [],
  };
  m.record('s1', ok, null);
  m.record('s1', null, new Error('down'));
  m.setPending('a', new Map([['s1', { n: 2, lag: 1.5 }]]));
  m.observeLog({ event: 'listen_error', level: 'warn', database: 'a', error: 'x', retryMs: 1000 });
  m.observeLog({ event: 'busy', level: 'info', sync: 's1' });
  return exportedSeries(await m.render());
}

/** Every problem of the dashboard's queries against an exposition; empty when it is sound. */
function checkDashboard(d: Dashboard, exported: Map<string, Set<string>>): string[] {
  const problems: string[] = [];
  const queries: { where: string; expr: string; legend?: string }[] = [];
  for (const p of d.panels) for (const t of p.targets) queries.push({ where: `panel "${p.title}"`, expr: t.expr, legend: t.legendFormat });
  for (const v of d.templating.list) {
    if (v.type === 'query') queries.push({ where: `variable ${v.name}`, expr: typeof v.query === 'string' ? v.query : v.query.query });
  }
  for (const { where, expr, legend } of queries) {
    const q = parseQuery(expr);
    if (q.selectors.length === 0) problems.push(`${where}: ${expr} reads no metric`);
    for (const f of q.functions) if (!FUNCTIONS.has(f)) problems.push(`${where}: ${f}( is no PromQL function the test knows`);
    const read = new Set<string>();
    for (const sel of q.selectors) {
      // a histogram's _bucket, _sum and _count are series of the exposition of their own
      const labels = exported.get(sel.metric);
      if (!labels) {
        problems.push(`${where}: ${sel.metric} is not exported by the runner`);
        continue;
      }
      for (const l of labels) read.add(l);
      for (const l of sel.labels) if (!labels.has(l)) problems.push(`${where}: ${sel.metric} has no label ${l}`);
    }
    for (const l of q.grouping) if (!read.has(l)) problems.push(`${where}: no metric of ${expr} has the label ${l}`);
    for (const m of (legend ?? '').matchAll(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g)) {
      if (!read.has(m[1]!) && !TARGET_LABELS.has(m[1]!)) problems.push(`${where}: legend {{${m[1]}}} is no label of ${expr}`);
    }
  }
  return problems;
}

test('every metric and label the Grafana dashboard queries is one the runner exports', async () => {
  const exported = await renderFullRegistry();
  assert.deepEqual(checkDashboard(dashboard, exported), []);
});

test('the dashboard shows lag, pending, runs, conflicts, durations, rows per table and runner health', () => {
  const used = new Set(dashboard.panels.flatMap((p) => p.targets.flatMap((t) => parseQuery(t.expr).selectors.map((s) => s.metric))));
  for (const metric of [
    'bucardo_lag_seconds',
    'bucardo_pending_changes',
    'bucardo_runs_total',
    'bucardo_conflicts_total',
    'bucardo_run_duration_seconds_bucket',
    'bucardo_table_rows_total',
    'bucardo_up',
    'bucardo_sync_failing',
    'bucardo_source_up',
    'process_resident_memory_bytes',
    'process_cpu_seconds_total',
  ]) {
    assert.ok(used.has(metric), `no panel reads ${metric}`);
  }
  for (const p of dashboard.panels) {
    assert.ok(['timeseries', 'stat', 'table'].includes(p.type), `panel "${p.title}": type ${p.type}`);
    assert.deepEqual(p.datasource, { type: 'prometheus', uid: '${DS_PROMETHEUS}' }, `panel "${p.title}" reads the chosen data source`);
    assert.ok(p.targets.length > 0, `panel "${p.title}" has a query`);
  }
  const ds = dashboard.templating.list.find((v) => v.name === 'DS_PROMETHEUS');
  assert.equal(ds?.type, 'datasource');
  assert.equal(ds?.query, 'prometheus');
});

test('the check catches a metric or a label the runner does not export', async () => {
  const exported = await renderFullRegistry();
  const broken = (from: string, to: string): Dashboard => JSON.parse(JSON.stringify(dashboard).replaceAll(from, to)) as Dashboard;
  const cases: [string, string, RegExp][] = [
    ['bucardo_lag_seconds{', 'bucardo_lag_secs{', /bucardo_lag_secs is not exported/],
    ['bucardo_run_duration_seconds_bucket', 'bucardo_run_duration_seconds_buckets', /bucardo_run_duration_seconds_buckets is not exported/],
    ['max by (sync, database) (bucardo_pending_changes', 'max by (sync, source) (bucardo_pending_changes', /has the label source/],
    ['bucardo_conflicts_total{sync=~', 'bucardo_conflicts_total{table=~', /bucardo_conflicts_total has no label table/],
    ['rate(process_cpu_seconds_total', 'rate(process_cpu_total', /process_cpu_total is not exported/],
    ['label_values(bucardo_runs_total, sync)', 'label_values(bucardo_runs_total, synk)', /variable sync: no metric .* has the label synk/],
    ['histogram_quantile(', 'histogram_quantil(', /histogram_quantil\( is no PromQL function/],
  ];
  for (const [from, to, want] of cases) {
    assert.ok(JSON.stringify(dashboard).includes(from), `the dashboard holds ${from}`);
    const problems = checkDashboard(broken(from, to), exported);
    assert.ok(
      problems.some((p) => want.test(p)),
      `${from} -> ${to}: ${JSON.stringify(problems)}`,
    );
  }
});
