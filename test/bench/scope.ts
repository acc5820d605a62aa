/**
 * Bounded phases: every phase runs inside a Scope with a deadline. On timeout (or failure)
 * the scope closes every connection it opened and runs its cleanups, which makes whatever
 * the phase was awaiting reject, so no phase can hang the suite; the phase is then
 * recorded as "timed out" and the suite goes on.
 */
import pg from 'pg';

export class PhaseTimeout extends Error {
  constructor(
    readonly phase: string,
    readonly ms: number,
  ) {
    super(`${phase} timed out after ${Math.round(ms / 1000)} s`);
  }
}

export class Scope {
  private clients = new Set<pg.Client>();
  private cleanups: (() => unknown)[] = [];
  readonly controller = new AbortController();

  get signal(): AbortSignal {
    return this.controller.signal;
  }
  get aborted(): boolean {
    return this.controller.signal.aborted;
  }

  /** A connection closed when the scope ends. */
  async connect(cfg: pg.ClientConfig): Promise<pg.Client> {
    if (this.aborted) throw new Error('phase ended');
    const c = new pg.Client(cfg);
    c.on('error', () => {
      /* the query in flight rejects */
    });
    await c.connect();
    this.clients.add(c);
    return c;
  }

  defer(fn: () => unknown): void {
    this.cleanups.push(fn);
  }

  async close(): Promise<void> {
    this.controller.abort();
    const cs = [...this.clients];
    this.clients.clear();
    for (const fn of this.cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch {
        /* best effort */
      }
    }
    await Promise.all(cs.map((c) => Promise.race([c.end().catch(() => {}), sleep(2000)])));
  }
}

/** Runs fn in a fresh scope that is closed afterwards; rejects with PhaseTimeout after ms. */
export async function withDeadline<T>(phase: string, ms: number, fn: (s: Scope) => Promise<T>): Promise<T> {
  const scope = new Scope();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new PhaseTimeout(phase, ms)), ms);
  });
  const work = fn(scope);
  work.catch(() => {}); // settled below or abandoned on timeout
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
    await scope.close();
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Epoch seconds with sub-millisecond precision (same clock as PostgreSQL's clock_timestamp()). */
export function now(): number {
  return (performance.timeOrigin + performance.now()) / 1000;
}
