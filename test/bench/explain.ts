/**
 * `node dist/test/bench/explain.js [SCALE]`: EXPLAIN ANALYZE of the runner's hottest read
 * query (pg_stat_statements in the benchmark: the per-run `COPY (SELECT ... FROM
 * bucardo_pk_<id> k LEFT JOIN table t ...)` of engine/runner/sql/pending.ts) on a pgbench
 * database of the given scale, for pending-key sets of the sizes a run sees (100 keys under
 * a 500 tps load, 100k in M1), as the runner builds them (CREATE TEMP TABLE ... AS, so no
 * statistics) and after ANALYZE of the temp table.
 */
import pg from 'pg';
import { startClusters, type ClusterGroup } from '../../cli/demo/clusters.js';
import { winnerRowsSql } from '../../engine/runner/sql/pending.js';
import { TABLES_DDL, dataSql, KEYS_DDL } from './schema.js';
import { CLUSTER_SETTINGS } from './config.js';

async function main(): Promise<void> {
  const scale = Number(process.argv[2] ?? 10);
  let group: ClusterGroup | null = null;
  try {
    group = await startClusters(['a'], { settings: CLUSTER_SETTINGS });
    const A = group.byName.a;
    await A.createDatabase('bench');
    const c = new pg.Client(A.clientConfig('bench'));
    await c.connect();
    await c.query(TABLES_DDL + dataSql(scale) + KEYS_DDL);
    await c.query('VACUUM ANALYZE');
    await c.query(
      'CREATE TABLE delta (aid int NOT NULL, _bucardo_txid xid8 NOT NULL DEFAULT pg_current_xact_id(), _bucardo_ts timestamptz NOT NULL DEFAULT now(), _bucardo_origin text)',
    );
    const table = { schema: 'public', name: 'pgbench_accounts', tableId: 'x', keyColumns: ['aid'] };
    const select = winnerRowsSql(table, ['aid', 'bid', 'abalance', 'filler'], 0)
      .replace(/^COPY \(/, '')
      .replace(/\) TO STDOUT$/, '');
    for (const keys of [100, 1000, 100_000]) {
      await c.query('TRUNCATE delta');
      await c.query(`INSERT INTO delta (aid) SELECT (random() * ${scale * 100_000 - 1})::int + 1 FROM generate_series(1, ${keys})`);
      for (const analyze of [false, true]) {
        await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
        await c.query(`CREATE TEMP TABLE bucardo_pk_x ON COMMIT DROP AS SELECT aid, max(_bucardo_ts) AS _bucardo_ts FROM delta GROUP BY aid`);
        if (analyze) await c.query('ANALYZE bucardo_pk_x');
        const t0 = performance.now();
        const r = await c.query(`EXPLAIN (ANALYZE, COSTS, TIMING OFF, SUMMARY ON) ${select}`);
        const ms = performance.now() - t0;
        await c.query('ROLLBACK');
        console.log(`\n### ${keys} pending keys, scale ${scale}, temp table ${analyze ? 'ANALYZEd' : 'as created (no statistics)'}: ${ms.toFixed(1)} ms\n`);
        console.log(r.rows.map((x: Record<string, string>) => `    ${x['QUERY PLAN']}`).join('\n'));
      }
    }
    await c.end();
  } finally {
    await group?.stopAll();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
