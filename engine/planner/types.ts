/** The planner's output: typed changes per database, and the problems that block apply. */
import type { Step } from '../sql/steps.js';

export type Action = 'create' | 'update' | 'replace' | 'destroy';

export type ObjectType = 'schema' | 'metadata_table' | 'delta_table' | 'function' | 'trigger' | 'sync' | 'sync_table';

export interface Change {
  database: string;
  action: Action;
  objectType: ObjectType;
  /** Display name, SQL syntax, e.g. `trigger bucardo_main_0a1b2c3d4e5f_i on public.items`. */
  object: string;
  /** Why, in words a reviewer understands. */
  reason: string;
  /** Unified diff (live -> wanted) of a function body, for updates of functions. */
  diff?: string;
  /** What apply does, in order, inside the database's transaction (engine/sql/steps.ts makes the SQL). */
  steps: Step[];
  /** Execution order within a database: lower first. */
  phase: number;
}

export interface PlanProblem {
  code: string;
  database?: string;
  sync?: string;
  object?: string;
  message: string;
  hint?: string;
}

/** A onetimecopy that the next run of a sync will do (SPEC: plan says so, with a row estimate). */
export interface CopyNote {
  sync: string;
  table: string;
  from: string;
  to: string;
  mode: 'always' | 'if_empty';
  estimatedRows: number;
}

export interface Plan {
  topology: string;
  changes: Change[];
  errors: PlanProblem[];
  warnings: PlanProblem[];
  copies: CopyNote[];
  /** Per database: fingerprint of the live state the plan was computed from. */
  fingerprints: Record<string, string>;
}

export interface Summary {
  add: number;
  change: number;
  destroy: number;
}

/** Terraform's counting: a replace is one add and one destroy. */
export function summarize(changes: Change[]): Summary {
  const s = { add: 0, change: 0, destroy: 0 };
  for (const c of changes) {
    switch (c.action) {
      case 'create':
        s.add++;
        break;
      case 'update':
        s.change++;
        break;
      case 'replace':
        s.add++;
        s.destroy++;
        break;
      case 'destroy':
        s.destroy++;
        break;
      default: {
        const never: never = c.action;
        throw new Error(`unknown action ${String(never)}`);
      }
    }
  }
  return s;
}

/** "about 1,234 rows" from pg_class.reltuples (-1: never analysed). */
export function approxRows(n: number): string {
  if (n < 0) return 'rows not counted yet (never analysed)';
  return `about ${n.toLocaleString('en-US')} row${n === 1 ? '' : 's'}`;
}
