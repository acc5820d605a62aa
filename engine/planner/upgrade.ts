/**
 * Upgrading an install made by an earlier bucardo, in place: its metadata gets the tables
 * and columns the current layout added (CREATE TABLE, ALTER TABLE ... ADD COLUMN) and the
 * new version number, in the database's one apply transaction. Nothing is dropped and made
 * again: the capture function is replaced by CREATE OR REPLACE FUNCTION and a capture
 * trigger by CREATE OR REPLACE TRIGGER (engine/planner/diff.ts), so the triggers of the
 * captured tables never stop firing and no write goes uncaptured (README, "Upgrading
 * bucardo"). Pure: no pg here.
 */
import type { InstalledState } from '../catalog/types.js';
import type { Change, PlanProblem } from './types.js';
import { METADATA_OBJECTS, METADATA_VERSION, metadataColumns, metadataFingerprint } from '../sql/metadata.js';
import type { Step } from '../sql/steps.js';
import { CHANGE_INDEX } from '../sql/capture.js';

/** The installed metadata version when it is older than this bucardo's, else null. */
export function olderMetadata(installed: InstalledState): string | null {
  const v = installed.meta.schema_version;
  if (v === undefined || !/^\d+$/.test(v)) return null;
  return Number(v) < Number(METADATA_VERSION) ? v : null;
}

/**
 * An install by a later bucardo, whose layout this one does not know: planning over it
 * would undo what that version added, so the plan is blocked.
 */
export function newerMetadataProblem(database: string, installed: InstalledState): PlanProblem | null {
  const v = installed.meta.schema_version;
  if (v === undefined || !/^\d+$/.test(v) || Number(v) <= Number(METADATA_VERSION)) return null;
  return {
    code: 'metadata_newer',
    database,
    message: `database ${database} holds bucardo metadata version ${v}, installed by a later bucardo; this one knows version ${METADATA_VERSION}`,
    hint: 'run the bucardo version that installed it, or a later one',
  };
}

/** The change bringing the metadata of an earlier bucardo's install to this version's layout. */
export function metadataUpgrade(topology: string, schema: string, installed: InstalledState, from: string): Omit<Change, 'database' | 'phase'> {
  const steps: Step[] = [];
  const adds: string[] = [];
  for (const { name, kind } of METADATA_OBJECTS) {
    const live = installed.tables.get(name);
    if (!live) {
      steps.push({ kind: 'create_metadata_table', schema, table: name });
      // the application roles insert into it from their capture triggers as into
      // truncate_log, and the runner reads and purges it as that one: an upgrade must not
      // make their writes fail where no default privileges cover the new table
      const grantsOf = name === CHANGE_INDEX && installed.tables.has('truncate_log') ? 'truncate_log' : null;
      if (grantsOf) steps.push({ kind: 'copy_grants', schema, from: grantsOf, to: name });
      adds.push(`${kind} ${name}${grantsOf ? ` (granted as ${grantsOf})` : ''}`);
      continue;
    }
    const have = new Set(live.map((c) => c.name));
    for (const c of metadataColumns(schema, name)) {
      if (have.has(c.name)) continue;
      steps.push({ kind: 'add_metadata_column', schema, table: name, column: c.name });
      adds.push(`column ${name}.${c.name}`);
    }
  }
  steps.push(
    { kind: 'set_meta', schema, key: 'schema_version', value: METADATA_VERSION },
    { kind: 'register_object', schema, objectType: 'schema', objectName: schema, table: null, fingerprint: metadataFingerprint(topology), detail: {} },
  );
  return {
    action: 'update',
    objectType: 'schema',
    object: `schema ${schema}`,
    reason: `metadata version ${from} -> ${METADATA_VERSION} (installed by an earlier bucardo), in place: ${adds.length ? `adds ${adds.join(', ')}` : 'nothing to add'}`,
    steps,
  };
}
