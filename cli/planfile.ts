/**
 * Plan files: `plan -o FILE` saves the changes, each with its typed steps, and a
 * fingerprint of every database's state; `apply FILE` does exactly those changes and
 * refuses if anything changed since: a state fingerprint, or the steps apply would take
 * now (compared as data).
 */
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { Topology } from '../engine/topology/types.js';
import type { Change, Plan } from '../engine/planner/types.js';
import type { Step } from '../engine/sql/steps.js';
import { BucardoError } from '../engine/errors.js';
import { modulesOf } from '../engine/topology/modules.js';

export interface PlanFile {
  format_version: '1';
  kind: 'bucardo-plan';
  topology: string;
  /** sha256 of the topology file's text when the plan was made. */
  topology_sha256: string;
  /** sha256 of each module the topology names (SPEC section 6), by path as written. */
  modules_sha256?: Record<string, string>;
  created: string;
  fingerprints: Record<string, string>;
  changes: PlanFileChange[];
}

/** A change as saved: what it is, and the steps (engine/sql/steps.ts) apply will take. */
export interface PlanFileChange {
  database: string;
  action: string;
  object: string;
  steps: Step[];
}

const saved = (c: Change): PlanFileChange => ({ database: c.database, action: c.action, object: c.object, steps: c.steps });

export function fileSha(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

export function writePlanFile(out: string, topologyFile: string, topology: Topology, plan: Plan): void {
  const doc: PlanFile = {
    format_version: '1',
    kind: 'bucardo-plan',
    topology: topology.name,
    topology_sha256: fileSha(topologyFile),
    modules_sha256: moduleShas(topology),
    created: new Date().toISOString(),
    fingerprints: plan.fingerprints,
    changes: plan.changes.map(saved),
  };
  try {
    fs.writeFileSync(out, `${JSON.stringify(doc, null, 2)}\n`);
  } catch (e) {
    throw new BucardoError('write_failed', `cannot write the plan file ${out}: ${(e as Error).message}`);
  }
}

/** Path as written -> sha256 of every module of the topology, as loaded. */
export function moduleShas(topology: Topology): Record<string, string> {
  return Object.fromEntries(
    modulesOf(topology)
      .map((m) => [m.path, m.sha256])
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
}

export function readPlanFile(path: string): PlanFile {
  let doc: PlanFile;
  try {
    doc = JSON.parse(fs.readFileSync(path, 'utf8')) as PlanFile;
  } catch (e) {
    throw new BucardoError('bad_plan_file', `cannot read the plan file ${path}: ${(e as Error).message}`, { hint: 'make one with bucardo plan -o FILE' });
  }
  if (doc?.kind !== 'bucardo-plan' || doc.format_version !== '1' || typeof doc.fingerprints !== 'object' || !Array.isArray(doc.changes)) {
    throw new BucardoError('bad_plan_file', `${path} is not a bucardo plan file`, { hint: 'make one with bucardo plan -o FILE' });
  }
  if (!doc.changes.every((c) => Array.isArray(c?.steps))) {
    throw new BucardoError(
      'bad_plan_file',
      `the plan file ${path} was made by an earlier version of bucardo (its changes carry no steps); nothing was changed`,
      { hint: 'run bucardo plan -o again' },
    );
  }
  return doc;
}

/** True when apply would now make exactly the saved changes, step for step (as data, in order). */
export function planFileMatches(doc: PlanFile, changes: Change[]): boolean {
  // through JSON, as the file went: a field left undefined is absent in both
  return isDeepStrictEqual(doc.changes, JSON.parse(JSON.stringify(changes.map(saved))));
}
