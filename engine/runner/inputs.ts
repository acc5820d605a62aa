/** What every step of a run works with: the sync, its connections, the run's scope, and the fenced write transactions. */
import type pg from 'pg';
import type { SyncContext } from './context.js';
import type { SyncConnections } from './connections.js';
import type { RunScope } from './scope.js';
import type { DatabaseState } from './types.js';
import type { ReceiverSet } from './foreign.js';

export interface RunInputs {
  ctx: SyncContext;
  conns: SyncConnections;
  scope: RunScope;
  /** What each database said when the run started (read under the fence). */
  states: Map<string, DatabaseState>;
  /** Each database's write transaction, open and fenced (run.ts). */
  writers: Map<string, pg.Client>;
  runId: string;
  started: Date;
  runner: string;
  /** The sync's targets of other engines, their transactions open (foreign.ts); absent when it has none. */
  receivers?: ReceiverSet;
}
