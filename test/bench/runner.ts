/**
 * The runner as users run it: `node dist/cli/main.js run -f FILE --log-format json` in a
 * child process (with the CLI's clean environment from test/helpers/cli.ts), its log
 * lines kept (per-run rows and durations are the first profile of where time goes), its
 * memory read from /proc/<pid>/status, and a clear error with its stderr tail when it dies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, cliEnv } from '../helpers/cli.js';

export interface RunLine {
  time: string;
  event: string;
  sync?: string;
  rows?: number;
  rows_by_table?: Record<string, number>;
  conflicts?: number;
  copied?: string[];
  started?: string;
  finished?: string;
  duration_ms?: number;
  error?: string;
  [k: string]: unknown;
}

const live = new Set<ChildProcess>();
/** Kills every runner child still alive (exit and signal paths of the suite). */
export function killAllRunners(): void {
  for (const c of live) c.kill('SIGKILL');
}

export class RunnerProcess {
  readonly child: ChildProcess;
  readonly lines: RunLine[] = [];
  private stderr = '';
  private stdoutRest = '';
  private log: fs.WriteStream;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  constructor(
    readonly label: string,
    args: string[],
    opts: { logFile: string; cpuProfDir?: string },
  ) {
    const nodeFlags = opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`] : [];
    this.log = fs.createWriteStream(opts.logFile);
    this.child = spawn(process.execPath, [...nodeFlags, BIN, ...args], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(this.child);
    this.child.stdout!.on('data', (d: Buffer) => {
      this.log.write(d);
      const text = this.stdoutRest + d.toString('utf8');
      const parts = text.split('\n');
      this.stdoutRest = parts.pop() ?? '';
      for (const p of parts) {
        if (!p.trim()) continue;
        try {
          this.lines.push(JSON.parse(p) as RunLine);
        } catch {
          this.lines.push({ time: new Date().toISOString(), event: 'text', text: p });
        }
      }
    });
    this.child.stderr!.on('data', (d: Buffer) => {
      this.log.write(d);
      this.stderr = (this.stderr + d.toString('utf8')).slice(-20_000);
    });
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        live.delete(this.child);
        this.exitInfo = { code, signal };
        this.log.end();
        resolve({ code, signal });
      }),
    );
  }

  static start(label: string, file: string, outDir: string, extra: string[] = [], cpuProf = false): RunnerProcess {
    const logFile = path.join(outDir, `runner-${label}.log`);
    const cpuProfDir = cpuProf ? path.join(outDir, `cpuprof-${label}`) : undefined;
    return new RunnerProcess(label, ['run', '-f', file, '--log-format', 'json', ...extra], { logFile, cpuProfDir });
  }

  get pid(): number {
    return this.child.pid!;
  }
  get alive(): boolean {
    return this.exitInfo === null;
  }

  /** The last lines of stderr (and of the log), for a failure message. */
  tail(n = 15): string {
    const err = this.stderr.trim().split('\n').slice(-n).join('\n');
    const fails = this.lines
      .filter((l) => l.event === 'run_failed')
      .slice(-3)
      .map((l) => `run_failed: ${l.error}`)
      .join('\n');
    return [err && `stderr:\n${err}`, fails && `log:\n${fails}`].filter(Boolean).join('\n') || '(no output)';
  }

  /** Rejects as soon as the runner exits (for racing against waits). */
  died(): Promise<never> {
    return this.exited.then((x) => {
      throw new Error(`runner ${this.label} exited (code ${x.code}, signal ${x.signal})\n${this.tail()}`);
    });
  }

  /** Completed runs that moved rows, since index `from` of lines. */
  runsSince(from: number): RunLine[] {
    return this.lines.slice(from).filter((l) => l.event === 'run');
  }

  /** Graceful stop (SIGTERM), then SIGKILL after graceMs. */
  async stop(graceMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.alive) return this.exitInfo!;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const r = await this.exited;
    clearTimeout(t);
    return r;
  }

  /** VmHWM / VmRSS in KiB from /proc (null when gone). */
  memory(): { hwmKiB: number; rssKiB: number } | null {
    try {
      const s = fs.readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const get = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
      return { hwmKiB: get('VmHWM'), rssKiB: get('VmRSS') };
    } catch {
      return null;
    }
  }

  /** Resets VmHWM to the current RSS (Linux: "5" > /proc/<pid>/clear_refs); false if not allowed. */
  resetPeak(): boolean {
    try {
      fs.writeFileSync(`/proc/${this.pid}/clear_refs`, '5');
      return true;
    } catch {
      return false;
    }
  }
}

/** user + system CPU seconds of a process (null when gone); /proc/<pid>/stat fields 14 and 15, in clock ticks of 1/100 s. */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return null;
  }
}

/** Samples VmRSS every intervalMs; returns the peak in KiB on stop(). */
export function rssSampler(r: RunnerProcess, intervalMs = 200): { stop(): number } {
  let peak = r.memory()?.rssKiB ?? 0;
  const t = setInterval(() => {
    const m = r.memory();
    if (m && m.rssKiB > peak) peak = m.rssKiB;
  }, intervalMs);
  return {
    stop() {
      clearInterval(t);
      const m = r.memory();
      if (m && m.rssKiB > peak) peak = m.rssKiB;
      return peak;
    },
  };
}
