/**
 * PostgreSQL's native logical replication measured in the same run, as the peer the M1
 * target names ("not below native LR's"): the peers' LR figure comes from another machine
 * and PostgreSQL 15, where the COPY limit was a third of this one's, so only a figure
 * taken beside this run's limit compares. A separate database pair (`bench_lr`, the same
 * pgbench data, no bucardo objects) with a publication on A and a subscription on B, with
 * PostgreSQL's defaults (pgoutput, streaming off). M1 one transaction with measure.sh's
 * definition: rows/s from the start of the UPDATE on A until a heartbeat written after it
 * is visible on B and every key shows the run's marker there, after the same TPC-B-like
 * load that precedes bucardo's M1 (M3's last arm), three bursts in a row, median. Torn
 * down afterwards, so no slot or apply worker is left to disturb other phases.
 */
import type { Env, Limit } from './measure.js';
import { exec, one } from './measure.js';
import type { Results } from './report.js';
import { withDeadline, now, sleep } from './scope.js';
import { TABLES_DDL, dataSql, KEYS_DDL, BENCHCTL_DDL } from './schema.js';
import { tpcbLoad } from './load.js';

const LRDB = 'bench_lr';

export interface NativeBurst {
  totalS: number;
  sourceS: number;
  rowsPerS: number;
}

export async function nativeLr(env: Env, res: Results, limit: Limit, peers: { bucardo: string; lr: string; target: string }): Promise<NativeBurst[]> {
  const major = /PostgreSQL (\d+)/.exec(String(res.env.postgres))?.[1] ?? '?';
  const label = `native LR (PG ${major}, same machine and run): M1 one ${env.cfg.m1Rows.toLocaleString('en-US')}-row transaction`;
  let bursts: NativeBurst[] = [];
  try {
    bursts = await withDeadline('native LR', 900_000, async (s) => {
      await Promise.all([env.A.createDatabase(LRDB), env.B.createDatabase(LRDB)]);
      const a = env.A.clientConfig(LRDB);
      const b = env.B.clientConfig(LRDB);
      await exec(a, TABLES_DDL + dataSql(env.cfg.scale) + KEYS_DDL);
      await exec(a, 'VACUUM ANALYZE');
      await exec(b, TABLES_DDL + KEYS_DDL + BENCHCTL_DDL);
      await exec(a, 'CREATE PUBLICATION bench_lr FOR TABLE pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history, bench_hb');
      const conninfo = `host=${a.host} port=${a.port} dbname=${LRDB} user=${a.user} password=${a.password}`;
      await exec(b, `CREATE SUBSCRIPTION bench_lr CONNECTION '${conninfo.replace(/'/g, "''")}' PUBLICATION bench_lr`);
      s.defer(() => exec(b, 'DROP SUBSCRIPTION IF EXISTS bench_lr').catch(() => {}));
      // initial table synchronisation, then caught up
      const t0 = now();
      while ((await one<{ n: number }>(b, `SELECT count(*) FILTER (WHERE srsubstate = 'r')::int AS n FROM pg_subscription_rel`)).n < 5) {
        if (now() - t0 > 600) throw new Error('the subscription did not finish its initial copy within 600 s');
        await sleep(200);
      }
      await exec(b, 'VACUUM ANALYZE');
      // the state bucardo's M1 meets: right after M3's last arm, 4 clients of unthrottled
      // TPC-B-like load for m3Secs after a VACUUM ANALYZE (as measure.sh runs M3, then M1)
      // (only where this run measured M3 before M1)
      if (env.cfg.phases.has('m3')) {
        await exec(a, 'VACUUM ANALYZE pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history');
        await exec(a, 'CHECKPOINT');
        const load = await tpcbLoad(s, a, { clients: 4, rate: null, seconds: env.cfg.m3Secs, scale: env.cfg.scale });
        console.log(`[bench] native LR: TPC-B-like load before M1 ${Math.round(load.tps)} tps`);
      }
      await exec(a, `INSERT INTO bench_hb (run_id, seq) VALUES (2000000, 1)`);
      if ((await one<{ t: number }>(b, `SELECT benchctl.wait_for(2000000, 1, 600) AS t`)).t === -1)
        throw new Error('the subscription did not catch up within 600 s');
      const out: NativeBurst[] = [];
      const rows = env.cfg.m1Rows;
      for (let i = 1; i <= Math.max(3, env.cfg.reps); i++) {
        const run = 2_000_000 + i;
        const marker = 1_600_000_000 + i;
        const poll = await s.connect(b);
        const polled = poll.query<{ t: number }>(`SELECT benchctl.wait_marker($1, 1, $2, $3, $4) AS t`, [run, marker, 600, rows]);
        polled.catch(() => {});
        await sleep(300);
        const ca = await s.connect(a);
        const u0 = now();
        await ca.query(`UPDATE pgbench_accounts SET abalance = $2 WHERE aid <= $1`, [rows, marker]);
        const u1 = now();
        await ca.query(`INSERT INTO bench_hb (run_id, seq) VALUES ($1, 1)`, [run]);
        const t2 = (await polled).rows[0].t;
        if (t2 === -1) throw new Error(`B did not show the ${rows} rows within 600 s`);
        out.push({ totalS: t2 - u0, sourceS: u1 - u0, rowsPerS: rows / (t2 - u0) });
        console.log(`[bench] native LR burst ${i}: ${(t2 - u0).toFixed(2)} s (UPDATE on A ${(u1 - u0).toFixed(2)} s)`);
      }
      return out;
    });
  } catch (e) {
    res.lost('lr.m1.single', label, 'rows/s', e, peers);
    return [];
  }
  const med = [...bursts].sort((x, y) => x.rowsPerS - y.rowsPerS)[Math.floor(bursts.length / 2)];
  res.add({
    id: 'lr.m1.single',
    label,
    value: med.rowsPerS,
    unit: 'rows/s',
    ratio: med.rowsPerS / limit.keyedRowsPerS,
    status: 'ok',
    bucardo: peers.bucardo,
    lr: peers.lr,
    note: `${med.totalS.toFixed(2)} s; UPDATE on A alone (no capture) ${med.sourceS.toFixed(2)} s; median of ${bursts.length}${env.cfg.phases.has('m3') ? ', after M3-like load' : ''}`,
    extra: { bursts },
  });
  return bursts;
}
