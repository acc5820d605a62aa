/**
 * One figure per measurement, each beside the COPY limit of the same run and the peers'
 * figures from issue 5 (../shared/bench/peers/README.md); printed as one table and
 * written as JSON.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export type Status = 'ok' | 'timed out' | 'failed' | 'skipped';

export interface Figure {
  id: string;
  label: string;
  /** The main value (null when not measured). */
  value: number | null;
  unit: string;
  /** value as a ratio to the COPY limit of this run, where that means something. */
  ratio?: number | null;
  /** What the peers got (text as in the issue). */
  bucardo?: string;
  lr?: string;
  target?: string;
  met?: boolean | null;
  status: Status;
  /** Shown after the value: p95/p99, source rate, ... */
  note?: string;
  error?: string;
  extra?: Record<string, unknown>;
}

export class Results {
  readonly figures: Figure[] = [];
  readonly checks: { name: string; ok: boolean; detail: string }[] = [];
  readonly started = new Date();
  readonly env: Record<string, unknown> = {
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    loadavg: os.loadavg(),
    hostname: os.hostname(),
  };
  config: Record<string, unknown> = {};

  add(f: Figure): Figure {
    this.figures.push(f);
    const v = f.value === null ? f.status : fmt(f.value, f.unit);
    console.log(`[bench] ${f.label}: ${v}${f.note ? ` (${f.note})` : ''}${f.error ? `\n        ${f.error.split('\n').join('\n        ')}` : ''}`);
    return f;
  }

  /** A figure that could not be taken: timed out or failed, with the reason. */
  lost(id: string, label: string, unit: string, e: unknown, peers: Partial<Figure> = {}): Figure {
    const timedOut = e instanceof Error && /timed out/.test(e.message);
    return this.add({ id, label, value: null, unit, status: timedOut ? 'timed out' : 'failed', error: e instanceof Error ? e.message : String(e), ...peers });
  }

  check(name: string, ok: boolean, detail: string): void {
    this.checks.push({ name, ok, detail });
    console.log(`[bench] check ${name}: ${ok ? 'ok' : 'FAILED'} ${detail}`);
  }

  table(): string {
    const head = ['metric', 'this run', 'x COPY limit', 'Bucardo 5.6', 'native LR', 'target', 'met'];
    const rows = this.figures.map((f) => [
      f.label,
      (f.value === null ? `**${f.status}**` : fmt(f.value, f.unit)) + (f.note ? ` (${f.note})` : ''),
      f.ratio == null ? '' : `${f.ratio.toFixed(3)}x`,
      f.bucardo ?? '',
      f.lr ?? '',
      f.target ?? '',
      f.met == null ? '' : f.met ? 'yes' : '**no**',
    ]);
    const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
    if (this.checks.length) {
      lines.push('', `Checks: ${this.checks.map((c) => `${c.name} ${c.ok ? 'ok' : `FAILED (${c.detail})`}`).join('; ')}`);
    }
    return lines.join('\n');
  }

  write(dir: string): string {
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `results.json`);
    fs.writeFileSync(
      file,
      JSON.stringify({ started: this.started, finished: new Date(), env: this.env, config: this.config, figures: this.figures, checks: this.checks }, null, 2),
    );
    fs.writeFileSync(path.join(dir, 'table.md'), `${this.table()}\n`);
    return file;
  }
}

export function fmt(v: number, unit: string): string {
  switch (unit) {
    case 'rows/s':
    case 'tps':
      return `${Math.round(v).toLocaleString('en-US')} ${unit}`;
    case 's':
      return `${v.toFixed(2)} s`;
    case 'ms':
      return `${v < 10 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US')} ms`;
    case 'MiB':
      return `${v.toFixed(0)} MiB`;
    case 'x':
      return `${v.toFixed(2)}x`;
    default:
      return `${v} ${unit}`;
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
