/**
 * What a change of a sync's section-6 settings (SPEC: custom code, renamed tables, column
 * subsets, row filters) does, in words for the plan, and which receivers must take a table
 * again. Pure: the registered detail as installed vs as desired (planner/desired.ts
 * syncDetail); no pg.
 *
 * A module's content is part of the detail (its sha256), so an edited handler is a plan
 * change like an edited topology. A target whose name, columns, filter or transform of a
 * table changed is emptied and copied again by the next run (the rows it holds were chosen
 * and shaped by the old settings); a source is never emptied: its rows are its
 * applications' own, and only changes from then on follow the new settings.
 */

import { receivingOn } from '../topology/receiving.js';

type Mod = { path: string; sha256: string };
type Override = { name?: { schema: string; name: string }; columns?: string[]; where?: string; transform?: Mod };
type Table = {
  schema: string;
  name: string;
  conflict?: { kind: string; module?: Mod };
  columns?: string[];
  where?: string;
  targets?: Record<string, Override>;
};
type Detail = { conflict?: { kind: string; module?: Mod }; hooks?: Record<string, Mod>; tables?: Table[]; sources?: string[]; targets?: string[] };

const tableKey = (t: { schema: string; name: string }) => `${t.schema}.${t.name}`;
const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
const short = (m: Mod | undefined) => (m ? `${m.path} (sha256 ${m.sha256.slice(0, 12)})` : 'none');

/** How database `db` receives table `t` under `d` (topology/receiving.ts). */
const receiving = (d: Detail, t: Table, db: string): Override => receivingOn(t, t.targets?.[db], (d.targets ?? []).includes(db));

/** Sentences describing every section-6 difference between two registered details of one sync. */
export function describeCustomChanges(live: Detail, want: Detail): string[] {
  const out: string[] = [];
  const mod = (what: string, a: Mod | undefined, b: Mod | undefined) => {
    if (same(a, b)) return;
    if (a && b && a.path === b.path) out.push(`module ${b.path} (${what}) changed: sha256 ${a.sha256.slice(0, 12)} -> ${b.sha256.slice(0, 12)}`);
    else out.push(`${what}: ${short(a)} -> ${short(b)}`);
  };
  mod('conflict handler', live.conflict?.module, want.conflict?.module);
  for (const h of ['before_sync', 'after_sync', 'on_error']) mod(`hook ${h}`, live.hooks?.[h], want.hooks?.[h]);
  const liveTables = new Map((live.tables ?? []).map((t) => [tableKey(t), t]));
  for (const t of want.tables ?? []) {
    const l = liveTables.get(tableKey(t));
    if (!l) continue;
    mod(`conflict handler of ${tableKey(t)}`, l.conflict?.module, t.conflict?.module);
    for (const db of new Set([...Object.keys(l.targets ?? {}), ...Object.keys(t.targets ?? {})])) {
      mod(`transform of ${tableKey(t)} for ${db}`, l.targets?.[db]?.transform, t.targets?.[db]?.transform);
    }
  }
  return out;
}

/** One receiver whose way of taking a table changed. */
export interface ReceivingChange {
  table: { schema: string; name: string };
  /** What changed, e.g. "filter changed". */
  what: string;
  /** True: the next run empties the table there and copies it again (a target). */
  recopy: boolean;
}

/** The tables whose name, columns, filter or transform for database `db` differ between the two details. */
export function receivingChanges(live: Detail, want: Detail, db: string): ReceivingChange[] {
  const isSource = (want.sources ?? []).includes(db);
  const liveTables = new Map((live.tables ?? []).map((t) => [tableKey(t), t]));
  const out: ReceivingChange[] = [];
  for (const t of want.tables ?? []) {
    const l = liveTables.get(tableKey(t));
    if (!l) continue; // new in the sync: onetimecopy decides
    const a = receiving(live, l, db);
    const b = receiving(want, t, db);
    const what: string[] = [];
    if (!same(a.name, b.name)) what.push(`name there changed to ${b.name ? tableKey(b.name) : tableKey(t)}`);
    if (!same(a.columns, b.columns)) what.push(`columns changed to ${b.columns ? b.columns.join(', ') : 'all'}`);
    if (!same(a.where, b.where)) what.push(b.where ? `filter changed to ${b.where}` : 'filter removed');
    if (!same(a.transform, b.transform)) what.push(b.transform ? `transform ${b.transform.path} changed` : 'transform removed');
    if (what.length) out.push({ table: { schema: t.schema, name: t.name }, what: what.join('; '), recopy: !isSource });
  }
  return out;
}
