/**
 * Throwaway MariaDB servers for tests and the bench (issue 14): Debian's mariadbd in a
 * temp folder, on a free port, bound to 127.0.0.1. As root, the server runs as the
 * unprivileged `mysql` user (spawn's uid/gid; the folder is chowned to it); otherwise as
 * the current user. Readiness is a connection that answers, within a deadline. A test
 * user with a password is created, so the password path is exercised.
 *
 *   const maria = useMariadb();      // one server for the file: before() / after()
 *   test('...', async () => { const db = await maria.fresh('tag', DDL); ... });
 */
import { before, after } from 'node:test';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { freePort } from '../../cli/demo/clusters.js';

export const MARIADBD = '/usr/sbin/mariadbd';
const INSTALL_DB = '/usr/bin/mariadb-install-db';
export const MARIADB_USER = 'bucardo_test';
/** The test user's password: tests check it never appears in bucardo's output. */
export const MARIADB_PASSWORD = 'pw-Secr3t-never-printed';

/** uid/gid to run the server as: `mysql`'s when running as root. */
function serverUser(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'mysql']).toString().trim());
  return { uid: id('-u'), gid: id('-g') };
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

export class MariadbServer {
  private proc: ChildProcess | null = null;
  private seq = 0;

  private constructor(
    readonly dir: string,
    readonly port: number,
    private owner: { uid: number; gid: number } | null,
  ) {}

  /** A new data folder, initialised, and its server started. */
  static async start(): Promise<MariadbServer> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bucardo-mariadb-'));
    const owner = serverUser();
    if (owner) fs.chownSync(dir, owner.uid, owner.gid);
    execFileSync(
      INSTALL_DB,
      ['--no-defaults', '--auth-root-authentication-method=normal', `--datadir=${dir}/data`, '--skip-test-db', ...(owner ? ['--user=mysql'] : [])],
      { stdio: 'pipe' },
    );
    const s = new MariadbServer(dir, await freePort(), owner);
    await s.resume();
    await s.asRoot(async (c) => {
      await c.query(`CREATE USER ?@'%' IDENTIFIED BY ?`, [MARIADB_USER, MARIADB_PASSWORD]);
      await c.query(`GRANT ALL ON *.* TO ?@'%'`, [MARIADB_USER]);
    });
    return s;
  }

  /** Starts the server on its folder and port (again, after stop); resolves once it answers. */
  async resume(): Promise<void> {
    const args = [
      '--no-defaults',
      `--datadir=${this.dir}/data`,
      `--socket=${this.dir}/mariadb.sock`,
      `--pid-file=${this.dir}/mariadb.pid`,
      `--log-error=${this.dir}/error.log`,
      `--port=${this.port}`,
      '--bind-address=127.0.0.1',
      '--skip-log-bin',
      '--skip-name-resolve',
      '--innodb-buffer-pool-size=128M',
      // a test server: durability across an OS crash is not under test, a killed client is
      '--innodb-flush-log-at-trx-commit=2',
    ];
    const p = spawn(MARIADBD, args, { stdio: 'ignore', ...(this.owner ?? {}) });
    running.add(p);
    p.on('exit', () => running.delete(p));
    this.proc = p;
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await this.asRoot(async () => {});
        return;
      } catch (e) {
        if (p.exitCode !== null || Date.now() > deadline) {
          const log = fs.existsSync(`${this.dir}/error.log`) ? fs.readFileSync(`${this.dir}/error.log`, 'utf8').slice(-2000) : '';
          throw new Error(`mariadbd did not start on port ${this.port}: ${String(e)}\n${log}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Stops the server (SIGTERM: a clean shutdown) and waits for it to exit. */
  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
  }

  /** Stops the server and removes its folder. */
  async destroy(): Promise<void> {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  async asRoot<T>(fn: (c: mysql.Connection) => Promise<T>, database?: string): Promise<T> {
    const c = await mysql.createConnection({ host: '127.0.0.1', port: this.port, user: 'root', database, charset: 'utf8mb4', multipleStatements: true });
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  }

  /** A new database, with `ddl` (statements separated by `;`) run in it. */
  async fresh(tag: string, ddl = ''): Promise<MariadbDb> {
    const name = `${tag}_${++this.seq}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
    await this.asRoot(async (c) => {
      await c.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
      if (ddl) await c.query(`USE \`${name}\`; ${ddl}`);
    });
    return new MariadbDb(this, name);
  }
}

/** One database on a test server, as topologies and tests name it. */
export class MariadbDb {
  constructor(
    readonly server: MariadbServer,
    readonly database: string,
  ) {}

  /** How the test user reaches it. */
  get connection(): { host: string; port: number; user: string; password: string; database: string } {
    return { host: '127.0.0.1', port: this.server.port, user: MARIADB_USER, password: MARIADB_PASSWORD, database: this.database };
  }

  /** A topology entry for it (discrete fields, with the test user's password). */
  get entry(): Record<string, unknown> {
    return { type: 'mariadb', ...this.connection };
  }

  // biome-ignore lint/suspicious/noExplicitAny: tests read rows by column name
  async rows(text: string, params: unknown[] = []): Promise<any[]> {
    return this.server.asRoot(
      async (c) => (await c.query({ sql: text, values: params, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true }))[0] as unknown[],
      this.database,
    );
  }

  async exec(text: string): Promise<void> {
    await this.server.asRoot((c) => c.query(text), this.database);
  }
}

/** One server for the test file: started before its tests, stopped and removed after. */
export function useMariadb(): { server(): MariadbServer; fresh(tag: string, ddl?: string): Promise<MariadbDb> } {
  let server: MariadbServer | null = null;
  before(
    async () => {
      server = await MariadbServer.start();
    },
    { timeout: 60_000 },
  );
  after(async () => {
    await server?.destroy();
  });
  return { server: () => server!, fresh: (tag, ddl) => server!.fresh(tag, ddl) };
}
