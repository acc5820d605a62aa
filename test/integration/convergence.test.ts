/**
 * The randomized convergence check (test/helpers/convergence.ts) in its short form: a few
 * seeds of a few seconds each. The long form runs many seeds for longer:
 *
 *   BUCARDO_CONVERGENCE_SEEDS=200 BUCARDO_CONVERGENCE_SECONDS=8 npm run test:convergence
 *
 * BUCARDO_CONVERGENCE_SEED=N replays one seed. Every failure prints its seed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useClusters } from '../helpers/env.js';
import { runSchedule, DDL } from '../helpers/convergence.js';

const env = useClusters(['a', 'b', 'c', 't'], { settings: { max_prepared_transactions: '20', track_commit_timestamp: 'on' } });

const first = process.env.BUCARDO_CONVERGENCE_SEED ? Number(process.env.BUCARDO_CONVERGENCE_SEED) : Math.floor(Math.random() * 2 ** 31);
const count = process.env.BUCARDO_CONVERGENCE_SEED ? 1 : Number(process.env.BUCARDO_CONVERGENCE_SEEDS ?? 2);
const seconds = Number(process.env.BUCARDO_CONVERGENCE_SECONDS ?? 5);

test(`${count} random schedules converge with nothing lost (first seed ${first}, ${seconds} s of writes each)`, {
  timeout: count * (seconds + 120) * 1000,
}, async () => {
  const totals = { transactions: 0, committed: 0, prepared: 0, truncates: 0, kills: 0, runs: 0, conflicts: 0, deferred: 0, exceptions: 0, keysChecked: 0 };
  for (let i = 0; i < count; i++) {
    const seed = (first + i) >>> 0;
    const dbs = await env.fresh(`conv_${i}`, DDL);
    const r = await runSchedule({ seed, seconds, dbs });
    for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += r[k];
    const summary = `seed ${seed}: ${r.committed}/${r.transactions} transactions committed (${r.prepared} prepared, ${r.truncates} truncates), ${r.kills} runner kills, ${r.runs} runs, ${r.conflicts} conflicts, ${r.deferred} deferred, ${r.exceptions} exceptions, ${r.keysChecked} keys checked${r.changeIndex ? ', change index' : ''}`;
    console.log(summary);
    assert.deepEqual(r.problems, [], `${summary}\nreplay with BUCARDO_CONVERGENCE_SEED=${seed}`);
    await Promise.all(dbs.map((d) => d.cluster.query('postgres', `DROP DATABASE ${d.dbname} WITH (FORCE)`).catch(() => {})));
  }
  console.log(`totals: ${JSON.stringify(totals)}`);
  assert.ok(totals.committed > 0 && totals.keysChecked > 0, 'the schedules wrote nothing');
});
