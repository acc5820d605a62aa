/**
 * Least privilege (issue 13): the roles, grants and schema the README documents, shared by
 * privileges.test (every detail of plan's checks) and the cross-version matrix (the same
 * round trip on every major: test/helpers/matrix.ts).
 */
import pg from 'pg';
import { simpleTopology, writeTopology, type TestDb } from './env.js';

export const OWNER = 'bucardo_owner';
export const RUNNER = 'bucardo_runner';
export const APP = 'shop_app';
export const PASSWORD = 'Least-Priv-pw-1';
export const SCHEMA = 'bucardo_main';

export const ROLES = `DO $$BEGIN
  CREATE ROLE ${OWNER} LOGIN PASSWORD '${PASSWORD}';
  CREATE ROLE ${RUNNER} LOGIN PASSWORD '${PASSWORD}';
  CREATE ROLE ${APP} LOGIN PASSWORD '${PASSWORD}';
EXCEPTION WHEN duplicate_object THEN NULL; END$$`;

export const DDL = `
  CREATE TABLE public.items (id bigint PRIMARY KEY, name text NOT NULL);
  CREATE SEQUENCE public.items_seq;
`;

/** What a superuser runs once per database: the README's owner block, and the runner's grants on the user's objects. */
export function setupSql(db: TestDb): string {
  return `
    ALTER TABLE public.items OWNER TO ${OWNER};
    ALTER SEQUENCE public.items_seq OWNER TO ${OWNER};
    GRANT CREATE ON DATABASE "${db.dbname}" TO ${OWNER};
    GRANT SELECT, INSERT, UPDATE, DELETE ON public.items TO ${RUNNER};
    GRANT SELECT, UPDATE ON SEQUENCE public.items_seq TO ${RUNNER};
    GRANT SET ON PARAMETER session_replication_role TO ${RUNNER};
    GRANT SELECT, INSERT, UPDATE, DELETE ON public.items TO ${APP};
  `;
}

/**
 * The README's grants on bucardo's schema, run by the owner once apply created it: the
 * runner's, and the application's (its writes on a source fill the change log).
 */
export const SCHEMA_GRANTS = `
  GRANT USAGE ON SCHEMA ${SCHEMA} TO ${RUNNER}, ${APP};
  GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${SCHEMA} TO ${RUNNER};
  GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${SCHEMA} TO ${RUNNER}, ${APP};
  GRANT INSERT ON ALL TABLES IN SCHEMA ${SCHEMA} TO ${APP};
  ALTER DEFAULT PRIVILEGES IN SCHEMA ${SCHEMA} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${RUNNER};
  ALTER DEFAULT PRIVILEGES IN SCHEMA ${SCHEMA} GRANT INSERT ON TABLES TO ${APP};
  ALTER DEFAULT PRIVILEGES IN SCHEMA ${SCHEMA} GRANT USAGE, SELECT ON SEQUENCES TO ${RUNNER}, ${APP};
`;

export const as = (role: string, db: TestDb) => db.cluster.url(db.dbname, role, PASSWORD);

/** Runs SQL as `role` on a database. */
export async function sqlAs(role: string, db: TestDb, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: as(role, db) });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/**
 * Two databases set up for the round trip (roles, the superuser's grants), and one
 * topology file per role over them: a multi-source sync of public.items with its sequence.
 */
export async function leastPrivilegeFiles(a: TestDb, b: TestDb): Promise<{ ownerFile: string; runnerFile: string }> {
  for (const d of [a, b]) await d.query(`${ROLES}; ${setupSql(d)}`);
  const topo = (role: string) =>
    simpleTopology({
      sources: [a, b],
      tables: ['public.items'],
      sequences: ['public.items_seq'],
      sync: { conflict: 'latest' },
      dbExtra: { [a.name]: { url: as(role, a) }, [b.name]: { url: as(role, b) } },
    });
  return { ownerFile: writeTopology(topo(OWNER)), runnerFile: writeTopology(topo(RUNNER)) };
}
