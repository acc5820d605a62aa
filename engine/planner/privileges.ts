/**
 * The privileges of bucardo's two roles, written once (the README's grant blocks say the
 * same). The owner role runs `apply` and `destroy`: it creates the topology schema and the
 * capture triggers on the source tables. The runner role runs `run`, `status`, `kick` and
 * `compare`: it reads the sources, writes the receivers and bucardo's metadata. `plan`
 * checks each database for the role its user plays there (checkedAs), so a runner's plan
 * names what the runner lacks and nothing of what only apply needs. Pure.
 */
import type { SyncSpec } from '../topology/types.js';
import type { DatabaseCatalog, TableInfo, SequenceInfo } from '../catalog/types.js';
import type { PlanProblem } from './types.js';
import { displayIdent, displayName } from '../sql/ident.js';

export type PlanRole = 'owner' | 'runner';

/**
 * The role a database's user is checked for: a superuser, the schema's owner, or (before
 * the first apply) a user that may create it can apply; any other user is a runner.
 */
export function checkedAs(cat: DatabaseCatalog): PlanRole {
  if (cat.isSuperuser) return 'owner';
  return (cat.installed.schemaExists ? cat.installed.schemaOwned : cat.canCreateSchema) ? 'owner' : 'runner';
}

/** The one line a runner's plan shows per database, so its errors are read as the runner's. */
export function runnerNote(cat: DatabaseCatalog): PlanProblem {
  const why = cat.installed.schemaExists ? `does not own schema ${displayIdent(cat.installed.schema)}` : 'may not create a schema';
  return {
    code: 'checked_as_runner',
    database: cat.database,
    message: `user ${cat.currentUser} ${why} on database ${cat.database}, so it cannot apply there: checked for what run, status, kick and compare need`,
  };
}

/** Whether the runner writes to `dbName` for this sync (a fullcopy's targets; a delta's targets, and its sources when several). */
function receivesOn(spec: SyncSpec, dbName: string): boolean {
  const isSource = spec.sources.includes(dbName);
  return spec.kind === 'fullcopy' ? !isSource : spec.sources.length > 1 || !isSource;
}

/** A missing privilege on one object: the message and the GRANT that gives it. */
export interface Lack {
  message: string;
  hint: string;
}

const lack = (cat: DatabaseCatalog, privs: string[], object: string, why = ''): Lack => ({
  message: `user ${cat.currentUser} lacks ${privs.join(', ')} on ${object} on database ${cat.database}${why}`,
  hint: `GRANT ${privs.join(', ')} ON ${object} TO ${displayIdent(cat.currentUser)}`,
});

/**
 * What `role` lacks on a table of the sync there. The owner: TRIGGER and ownership on a
 * delta source (CREATE TRIGGER takes TRIGGER; DROP TRIGGER and ENABLE ALWAYS take the
 * owner). The runner: SELECT on a source, DML on a receiver, TRUNCATE for a fullcopy that
 * empties with it.
 */
export function tableLacks(role: PlanRole, spec: SyncSpec, cat: DatabaseCatalog, t: TableInfo): Lack[] {
  const display = displayName(t.schema, t.name);
  const isSource = spec.sources.includes(cat.database);
  const p = t.privileges;
  if (role === 'owner') {
    if (!isSource || spec.kind !== 'delta') return [];
    if (!p.trigger) return [lack(cat, ['TRIGGER'], display, ' (needed for the capture triggers)')];
    if (t.owned) return [];
    return [
      {
        message: `user ${cat.currentUser} does not own ${display} on database ${cat.database} (its owner is ${t.owner}): apply drops and re-enables capture triggers, which takes the table's owner`,
        hint: `GRANT ${displayIdent(t.owner)} TO ${displayIdent(cat.currentUser)}, or ALTER TABLE ${display} OWNER TO ${displayIdent(cat.currentUser)}`,
      },
    ];
  }
  const out: Lack[] = [];
  if (isSource && !p.select) out.push(lack(cat, ['SELECT'], display));
  if (receivesOn(spec, cat.database)) {
    const missing: string[] = (['select', 'insert', 'update', 'delete'] as const)
      .filter((n) => !p[n] && !(n === 'select' && isSource && !p.select))
      .map((n) => n.toUpperCase());
    if (spec.kind === 'fullcopy' && spec.deletemethod !== 'delete' && !p.truncate) missing.push('TRUNCATE');
    if (missing.length) out.push(lack(cat, missing, display));
  }
  return out;
}

/** What the runner lacks on a sequence of the relgroup there: it reads last_value and calls setval. */
export function sequenceLacks(role: PlanRole, cat: DatabaseCatalog, s: SequenceInfo): Lack[] {
  if (role === 'owner') return [];
  const missing = [...(s.canSelect ? [] : ['SELECT']), ...(s.canUpdate ? [] : ['UPDATE'])];
  return missing.length ? [lack(cat, missing, `SEQUENCE ${displayName(s.schema, s.name)}`)] : [];
}

/**
 * The runner sets session_replication_role = replica on every database of a delta sync
 * (a run's write transactions are opened alike on all of them, a one-way source's too:
 * runner/receive.ts planWork) and on a fullcopy's targets.
 */
export function replicationRoleLack(role: PlanRole, spec: SyncSpec, cat: DatabaseCatalog): Lack | undefined {
  if (role === 'owner' || cat.canSetReplicationRole) return undefined;
  if (spec.kind === 'fullcopy' && spec.sources.includes(cat.database)) return undefined;
  return {
    message: `user ${cat.currentUser} on database ${cat.database} may not set session_replication_role, which the runner needs to write without firing triggers`,
    hint:
      cat.serverVersion >= 150000
        ? `GRANT SET ON PARAMETER session_replication_role TO ${displayIdent(cat.currentUser)}`
        : `PostgreSQL ${Math.floor(cat.serverVersion / 10000)} has no GRANT SET ON PARAMETER: connect as a superuser`,
  };
}

// The runner reads and writes the metadata tables (watermarks, run history, conflicts,
// change logs it purges; never TRUNCATE), reads kick_seq's last_value, and bumps it
// (nextval: USAGE) when its own writes are captured again (makedelta with autokick).
const SCHEMA_TABLE_PRIVS = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'];
const SCHEMA_SEQUENCE_PRIVS = ['USAGE', 'SELECT'];

/** What the runner lacks on the topology schema and the tables and sequences in it, one error per kind of object. */
export function schemaLacks(role: PlanRole, cat: DatabaseCatalog): Lack[] {
  const inst = cat.installed;
  if (role === 'owner' || !inst.schemaExists) return [];
  const schema = displayIdent(inst.schema);
  const out: Lack[] = [];
  if (!inst.schemaUsage) out.push(lack(cat, ['USAGE'], `SCHEMA ${schema}`));
  for (const [kind, need, all] of [
    ['table', SCHEMA_TABLE_PRIVS, 'TABLES'],
    ['sequence', SCHEMA_SEQUENCE_PRIVS, 'SEQUENCES'],
  ] as const) {
    const short = inst.grants.filter((g) => g.kind === kind && need.some((p) => !g.held.includes(p)));
    if (!short.length) continue;
    const missing = need.filter((p) => short.some((g) => !g.held.includes(p)));
    const names = short.map((g) => displayName(inst.schema, g.name));
    out.push({
      message: `user ${cat.currentUser} lacks ${missing.join(', ')} on ${names.length} ${kind}${names.length > 1 ? 's' : ''} of schema ${schema} on database ${cat.database} (${names.slice(0, 3).join(', ')}${names.length > 3 ? ', ...' : ''})`,
      hint: `as the schema's owner: GRANT ${need.join(', ')} ON ALL ${all} IN SCHEMA ${schema} TO ${displayIdent(cat.currentUser)} (see the README, "Least privilege")`,
    });
  }
  return out;
}
