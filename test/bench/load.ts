/**
 * Write loads driven from Node, shaped like pgbench's: the built-in "tpcb-like" script
 * (seven statements, each its own round trip with literal values, as pgbench -M simple
 * sends them) with a fixed-rate Poisson schedule like `pgbench -R` or unthrottled, and the
 * M1 burst of one-row UPDATE transactions over a shared key counter (measure.sh's
 * burst_seq). Latency is counted from each transaction's scheduled start, as pgbench -R does.
 */
import type pg from 'pg';
import type { Scope } from './scope.js';
import { sleep } from './scope.js';

export interface LoadResult {
  transactions: number;
  seconds: number;
  tps: number;
  latencyAvgMs: number;
  /** Failed transactions (deadlocks with the runner's writes on a two-source database), rolled back and not retried. */
  errors: number;
  firstError?: string;
}

export interface TpcbOptions {
  clients: number;
  /** Transactions per second over all clients; null: as fast as possible. */
  rate: number | null;
  seconds: number;
  scale: number;
  /** Only aids 1..keyLimit (default: all accounts). */
  keyLimit?: number;
  /** Ends the load early. */
  stop?: AbortSignal;
}

const rnd = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));

async function tpcbTransaction(c: pg.Client, scale: number, keyLimit: number): Promise<void> {
  const aid = rnd(1, keyLimit);
  const bid = rnd(1, scale);
  const tid = rnd(1, 10 * scale);
  const delta = rnd(-5000, 5000);
  await c.query('BEGIN');
  try {
    await c.query(`UPDATE pgbench_accounts SET abalance = abalance + ${delta} WHERE aid = ${aid}`);
    await c.query(`SELECT abalance FROM pgbench_accounts WHERE aid = ${aid}`);
    await c.query(`UPDATE pgbench_tellers SET tbalance = tbalance + ${delta} WHERE tid = ${tid}`);
    await c.query(`UPDATE pgbench_branches SET bbalance = bbalance + ${delta} WHERE bid = ${bid}`);
    await c.query(`INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (${tid}, ${bid}, ${aid}, ${delta}, CURRENT_TIMESTAMP)`);
    await c.query('END');
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {});
    throw e;
  }
}

/** TPC-B-like load on `cfg`'s database; resolves when the time is up (or the scope ends). */
export async function tpcbLoad(scope: Scope, cfg: pg.ClientConfig, o: TpcbOptions): Promise<LoadResult> {
  const clients = await Promise.all(Array.from({ length: o.clients }, () => scope.connect(cfg)));
  const t0 = performance.now();
  const end = t0 + o.seconds * 1000;
  let transactions = 0;
  let errors = 0;
  let firstError: string | undefined;
  let latencySum = 0;
  const perClientRate = o.rate ? o.rate / o.clients : null;
  await Promise.all(
    clients.map(async (c) => {
      let due = performance.now();
      while (!scope.aborted && !o.stop?.aborted) {
        if (perClientRate) {
          due += (-Math.log(1 - Math.random()) / perClientRate) * 1000;
          if (due >= end) break;
          const wait = due - performance.now();
          if (wait > 0) await sleep(wait, o.stop ? AbortSignal.any([scope.signal, o.stop]) : scope.signal);
          if (o.stop?.aborted) break;
        } else {
          due = performance.now();
          if (due >= end) break;
        }
        try {
          await tpcbTransaction(c, o.scale, o.keyLimit ?? o.scale * 100_000);
          transactions++;
        } catch (e) {
          if (scope.aborted) break;
          errors++;
          firstError ??= (e as Error).message;
        }
        latencySum += performance.now() - due;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return { transactions, seconds, tps: transactions / seconds, latencyAvgMs: transactions ? latencySum / (transactions + errors) : 0, errors, firstError };
}

/**
 * `n` one-row UPDATE transactions (abalance := value, default abalance + 1) over aids first, first+step, ... from
 * `clients` concurrent connections; each key is taken once from a shared counter.
 */
export async function oneRowBurst(
  scope: Scope,
  cfg: pg.ClientConfig,
  o: { clients: number; n: number; first?: number; step?: number; value?: number },
): Promise<LoadResult> {
  const clients = await Promise.all(Array.from({ length: o.clients }, () => scope.connect(cfg)));
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  await Promise.all(
    clients.map(async (c) => {
      while (!scope.aborted) {
        const i = next++;
        if (i >= o.n) break;
        const aid = (o.first ?? 1) + i * (o.step ?? 1);
        try {
          await c.query(`UPDATE pgbench_accounts SET abalance = ${o.value ?? 'abalance + 1'} WHERE aid = ${aid}`);
        } catch (e) {
          if (scope.aborted) break;
          errors++;
          firstError ??= (e as Error).message;
        }
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const transactions = Math.min(next, o.n) - errors;
  return { transactions, seconds, tps: transactions / seconds, latencyAvgMs: (seconds * 1000 * o.clients) / Math.max(1, transactions), errors, firstError };
}
