/**
 * Per-test-file set-up for integration tests: clusters started once per file (before),
 * stopped and removed after (even when a test fails), and fresh databases per test.
 *
 *   const env = useClusters(['a', 'b']);
 *   test('...', async () => { const [a, b] = await env.fresh('tag', DDL); ... });
 */
import { before, after } from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { startClusters, type Cluster, type ClusterGroup, type GroupOptions } from '../../cli/demo/clusters.js';

/** One fresh database on one cluster. `name` is its key in topologies. */
export class TestDb {
  constructor(
    readonly cluster: Cluster,
    readonly dbname: string,
    readonly name: string,
  ) {}
  get url(): string {
    return this.cluster.url(this.dbname);
  }
  // biome-ignore lint/suspicious/noExplicitAny: tests read rows by column name
  query<T extends import('pg').QueryResultRow = any>(sql: string, params: unknown[] = []) {
    return this.cluster.query<T>(this.dbname, sql, params);
  }
  // biome-ignore lint/suspicious/noExplicitAny: tests read rows by column name
  async one<T = any>(sql: string, params: unknown[] = []): Promise<T> {
    const r = await this.query(sql, params);
    return r.rows[0] as T;
  }
}

export interface TestEnv {
  group(): ClusterGroup;
  cluster(name: string): Cluster;
  /** A new database on each named cluster (default: all), keyed by cluster name; runs `sql` on each. */
  fresh(tag: string, sql?: string, which?: string[]): Promise<TestDb[]>;
}

/** `opts.majors` runs some clusters on another PostgreSQL major: `useClusters(['a', 'b'], { majors: { a: 15, b: 18 } })`. */
export function useClusters(names: string[], opts: GroupOptions = {}): TestEnv {
  return useGroup(names, () => startClusters(names, opts));
}

/**
 * Clusters from `start` (embedded ones, or test/helpers/stock.ts's), started before the
 * file's tests and stopped after; `names` are the keys of those to make databases on.
 */
export function useGroup(names: string[], start: () => Promise<ClusterGroup>): TestEnv {
  let group: ClusterGroup | null = null;
  let seq = 0;
  before(
    async () => {
      group = await start();
    },
    { timeout: 180_000 },
  );
  after(
    async () => {
      await group?.stopAll();
    },
    { timeout: 120_000 },
  );
  return {
    group: () => group!,
    cluster: (n) => group!.byName[n],
    async fresh(tag, sql, which = names) {
      const n = ++seq;
      const dbs: TestDb[] = [];
      for (const w of which) {
        const c = group!.byName[w];
        const dbname = `${tag}_${n}_${w}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
        await c.createDatabase(dbname);
        dbs.push(new TestDb(c, dbname, w));
      }
      if (sql) await Promise.all(dbs.map((d) => d.query(sql)));
      return dbs;
    },
  };
}

const tempDirs = new Set<string>();
process.on('exit', () => {
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A temporary folder removed when the test process exits. */
export function tempDir(prefix = 'bucardo-test-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

/** Writes a topology (object or YAML text) to DIR/bucardo.yaml; returns the file path. */
export function writeTopology(topology: unknown, dir = tempDir(), name = 'bucardo.yaml'): string {
  const text = typeof topology === 'string' ? topology : YAML.stringify(topology, { lineWidth: 0 });
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

/** A one-relgroup, one-sync topology over test databases. */
export function simpleTopology(o: {
  sources: TestDb[];
  targets?: TestDb[];
  tables: unknown[];
  sequences?: string[];
  sync?: Record<string, unknown>;
  name?: string;
  dbExtra?: Record<string, Record<string, unknown>>;
}): Record<string, unknown> {
  const all = [...o.sources, ...(o.targets ?? [])];
  const databases: Record<string, unknown> = {};
  for (const d of all) databases[d.name] = { url: d.url, ...(o.dbExtra?.[d.name] ?? {}) };
  const rg: Record<string, unknown> = { tables: o.tables };
  if (o.sequences) rg.sequences = o.sequences;
  const sync: Record<string, unknown> = { relgroup: 'g', sources: o.sources.map((d) => d.name) };
  if (o.targets?.length) sync.targets = o.targets.map((d) => d.name);
  Object.assign(sync, o.sync ?? {});
  const topo: Record<string, unknown> = { version: 1, databases, relgroups: { g: rg }, syncs: { s1: sync } };
  if (o.name) topo.name = o.name;
  return topo;
}

/** Polls fn until truthy; throws with `what` after `timeout` ms. */
export async function waitFor<T>(fn: () => Promise<T> | T, what: string, timeout = 20_000, interval = 100): Promise<T> {
  const end = Date.now() + timeout;
  let lastErr: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastErr = e;
    }
    await new Promise((r) => setTimeout(r, interval));
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what}${lastErr ? ` (last error: ${String(lastErr)})` : ''}`);
}
