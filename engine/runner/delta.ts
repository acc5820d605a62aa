/**
 * One run of a delta sync, in the steps of docs/protocol.md, each a function named after
 * its step (run.ts did step 1, `fence`, and reads every database's state under it; step
 * 12, `recordFailure`, is run.ts's too):
 *
 *   2. lockTables        snapshot.ts   tables a onetimecopy loads into a source (lock_tables: all)
 *   3. takeSnapshots     snapshot.ts   REPEATABLE READ snapshot and pending keys per source;
 *      assertScopeCurrent snapshot.ts  the tables the run touches not altered since step 1
 *      commitIdle        commit.ts     nothing to do: sequences up, commit, done
 *   4. resolveConflicts  conflicts.ts  keys pending on several sources get one winner
 *   5. planWork          receive.ts    replica role and origin; what each database empties, copies, stages
 *   6. stage             receive.ts    the winners' rows into staging on every receiver
 *      stageMerged       custom/conflicts.ts  rows merged by a custom conflict handler, into every database
 *   7. loadTargets       receive.ts    targets: empty, onetimecopy, direct apply
 *      loadReceivers     foreign.ts    targets of other engines: the same, through their receivers
 *   8. loadSources       receive.ts    sources: reads end, then empty, onetimecopy
 *   9. applyStaged       receive.ts    staged rows in; on sources guarded, deferring keys
 *                                      with a local change the run has not seen;
 *      checkForeignKeys  constraints.ts  no child row left without its parent
 *      requeue           receive.ts    deferred keys back to their senders
 *  10. commitRun         commit.ts     watermark (compare and set) and history, commit
 *  11. finishRun         finish.ts     confirm on the sources; purge, ANALYZE off the run's path
 *
 * Nothing here holds rows in Node memory: keys and rows flow database to database as COPY
 * streams; only counts, snapshots and at most CONFLICT_DETAIL_CAP conflict records come back.
 * (A custom conflict handler is the exception: it sees its conflicts' rows, a batch at a
 * time, and the rows it merges are held until they are staged.)
 */
import type { RunResult } from './types.js';
import type { RunInputs } from './inputs.js';
import { lockTables, takeSnapshots, assertScopeCurrent } from './snapshot.js';
import { resolveConflicts } from './conflicts.js';
import { planWork, stage, loadTargets, loadSources, applyStaged, requeue } from './receive.js';
import { commitRun, commitIdle } from './commit.js';
import { checkForeignKeys } from './constraints.js';
import { finishRun } from './finish.js';
import { stageMerged } from './custom/conflicts.js';
import { trafficOf } from './custom/summary.js';
import { loadReceivers } from './foreign.js';
import { BucardoError } from '../errors.js';

export type { RunInputs } from './inputs.js';

export async function runDelta(inp: RunInputs): Promise<RunResult> {
  const { ctx, conns, scope, writers } = inp;
  const sync = ctx.sync;
  const locks = await lockTables(inp);
  const reads = await takeSnapshots(inp);
  await assertScopeCurrent(inp, reads);

  const anyPending = reads.some((r) => [...r.pending.values()].some((p) => p.n > 0) || r.truncates.size > 0);
  const anyCopy = scope.tables.some((t) => t.copyClear.length > 0) || !!inp.receivers?.list.some((r) => r.copyDue.size > 0);
  if (!anyPending && !anyCopy) {
    await commitIdle(inp, reads);
    return {
      sync: sync.name,
      runId: inp.runId,
      wrote: false,
      rowsByTable: {},
      rows: 0,
      conflicts: 0,
      started: inp.started,
      finished: new Date(),
      copied: [],
      tableIds: scope.tables.map((t) => t.tableId),
    };
  }

  const conflicts = await resolveConflicts(inp, reads);
  const work = await planWork(inp, reads, locks);
  await stage(inp, reads, work);
  if (conflicts.merged.size) await stageMerged(inp, work, conflicts.merged);
  await loadTargets(inp, reads, work);
  if (inp.receivers) {
    if (conflicts.merged.size) {
      throw new BucardoError('not_supported', `sync ${sync.name}: rows merged by a custom conflict handler cannot be written to targets of other engines yet`, {
        hint: 'have the handler pick a winning database instead of merging',
      });
    }
    for (const d of await loadReceivers(inp, reads)) if (!work.copied.includes(d)) work.copied.push(d);
  }
  await loadSources(inp, reads, work);
  const deferred = await applyStaged(inp, reads, work, locks);
  await checkForeignKeys(inp, work);
  await requeue(inp, deferred);

  const rows = Object.values(work.rowsByTable).reduce((a, b) => a + b, 0);
  const snapshots = Object.fromEntries(reads.map((r) => [r.db, r.snapshot]));
  await commitRun(inp, { snapshots, rows, rowsByTable: work.rowsByTable, conflicts: conflicts.count, conflictRecords: conflicts.records });
  const consumed = new Map(reads.map((r) => [r.db, new Set([...r.pending.keys(), ...r.truncates.keys()])]));
  const changeIndexes = new Set(reads.filter((r) => r.changeIndex).map((r) => r.db));
  await finishRun(ctx, conns, writers, snapshots, scope.nextSeq, scope.tables, work.copyTargets, consumed, changeIndexes);
  return {
    sync: sync.name,
    runId: inp.runId,
    wrote: true,
    rowsByTable: work.rowsByTable,
    rows,
    conflicts: conflicts.count,
    conflictRecords: conflicts.records,
    started: inp.started,
    finished: new Date(),
    copied: work.copied,
    deferred: Object.keys(work.deferred).length ? work.deferred : undefined,
    tableIds: scope.tables.map((t) => t.tableId),
    // only after_sync reads it (custom/summary.ts)
    ...(ctx.sync.hooks.after_sync ? { traffic: trafficOf(inp, reads, work, deferred) } : {}),
  };
}
