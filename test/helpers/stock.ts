/**
 * Clusters from the machine's own PostgreSQL packages (Debian's `postgresql`), for the
 * tests that must see what users run: unlike the embedded build, a stock server has JIT
 * on by default (and contrib, for pg_stat_statements). Same shape as the embedded
 * clusters (a Cluster whose init/start/stop run the package's initdb and pg_ctl, as the
 * `postgres` OS user when we are root), so TestDb and the helpers work unchanged.
 *
 * `.ci/run` installs the package; without it, test/run.mjs leaves the *.stock.test files
 * out and prints one line saying so.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Cluster, freePort, startGroup, SUPERUSER, SUPERPASS, type ClusterGroup } from '../../cli/demo/clusters.js';

/** The newest /usr/lib/postgresql/N/bin that has initdb, pg_ctl and postgres, or null. */
export function stockBinDir(): string | null {
  const root = '/usr/lib/postgresql';
  if (!fs.existsSync(root)) return null;
  const versions = fs
    .readdirSync(root)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const bin = path.join(root, v, 'bin');
    if (['initdb', 'pg_ctl', 'postgres'].every((b) => fs.existsSync(path.join(bin, b)))) return bin;
  }
  return null;
}

const asRoot = process.getuid?.() === 0;

/** Runs a package binary, as `postgres` when we are root (PostgreSQL refuses to run as root). */
function run(bin: string, args: string[]): void {
  const cmd = asRoot ? 'runuser' : bin;
  const argv = asRoot ? ['-u', 'postgres', '--', bin, ...args] : args;
  execFileSync(cmd, argv, { stdio: 'pipe', timeout: 120_000 });
}

export class StockCluster extends Cluster {
  readonly binDir: string;
  private readonly extra: Record<string, string>;

  constructor(name: string, baseDir: string, binDir: string, settings: Record<string, string> = {}) {
    super(name, baseDir, { settings });
    this.binDir = binDir;
    this.extra = settings;
  }

  /** The server's major version (from the bin path). */
  get major(): number {
    return Number(path.basename(path.dirname(this.binDir)));
  }

  override async init(): Promise<void> {
    const dir = path.dirname(this.dataDir);
    await fsp.mkdir(dir, { recursive: true, mode: 0o777 });
    await fsp.chmod(dir, 0o777);
    const pw = path.join(dir, 'pw');
    await fsp.writeFile(pw, `${SUPERPASS}\n`, { mode: 0o644 });
    run(path.join(this.binDir, 'initdb'), [
      '-D',
      this.dataDir,
      '-U',
      SUPERUSER,
      '--pwfile',
      pw,
      '--auth',
      'scram-sha-256',
      '--encoding',
      'UTF8',
      '--locale',
      'C',
    ]);
    this.port = await freePort();
  }

  override async start(): Promise<void> {
    if (this.running) return;
    const settings: Record<string, string> = {
      listen_addresses: '127.0.0.1',
      unix_socket_directories: path.dirname(this.dataDir),
      fsync: 'off',
      max_connections: '200',
      ...this.extra,
    };
    const opts = [`-c port=${this.port}`, ...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`)].join(' ');
    const log = path.join(path.dirname(this.dataDir), 'server.log');
    run(path.join(this.binDir, 'pg_ctl'), ['-D', this.dataDir, '-l', log, '-o', opts, '-w', '-t', '60', 'start']);
    this.running = true;
  }

  override async stop(): Promise<void> {
    if (!this.running) return;
    await this.closePools();
    try {
      run(path.join(this.binDir, 'pg_ctl'), ['-D', this.dataDir, '-m', 'fast', '-w', 'stop']);
    } finally {
      this.running = false;
    }
  }
}

/** Starts stock clusters (one per name), stopped and removed by stopAll() even on failure. */
export async function startStockClusters(names: string[], settings: Record<string, string> = {}): Promise<ClusterGroup> {
  const binDir = stockBinDir();
  if (!binDir) throw new Error('no stock PostgreSQL server installed (apt-get install postgresql)');
  const baseDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'bucardo-stock-'));
  await fsp.chmod(baseDir, 0o755);
  const clusters = names.map((n) => new StockCluster(n, baseDir, binDir, settings));
  return startGroup(baseDir, clusters, async () => {
    for (const c of clusters) await c.init();
    for (const c of clusters) await c.start();
  });
}
