/**
 * Helpers of the runner's integration tests: install a topology with the real
 * `bucardo apply`, run the runner once, and compare tables across databases by content.
 */
import assert from 'node:assert/strict';
import { runCli, type CliResult } from './cli.js';
import { writeTopology, type TestDb } from './env.js';

function show(r: CliResult): string {
  return `\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** `bucardo apply -f FILE --auto-approve`, asserting exit 0. */
export async function applyOk(file: string): Promise<CliResult> {
  const r = await runCli(['apply', '-f', file, '--auto-approve']);
  assert.equal(r.code, 0, `apply failed${show(r)}`);
  return r;
}

/** `bucardo run -f FILE --once [...extra]`, asserting the exit code (default 0). */
export async function runOnce(file: string, extra: string[] = [], code = 0): Promise<CliResult> {
  const r = await runCli(['run', '-f', file, '--once', ...extra], { timeout: 300_000 });
  assert.equal(r.code, code, `run --once exited ${r.code}, expected ${code}${show(r)}`);
  return r;
}

/** Count and md5 of every row's text form, in byte order: equal iff the same rows. */
export async function tableFingerprint(db: TestDb, table: string): Promise<string> {
  const r = await db.query(`SELECT count(*)::text AS n, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text COLLATE "C"), '')) AS h FROM ${table} t`);
  return `${r.rows[0].n}:${r.rows[0].h}`;
}

/** Asserts every database has the same rows as the first in each table; shows a diff if not. */
export async function assertSame(dbs: TestDb[], tables: string[], context = ''): Promise<void> {
  const [ref, ...others] = dbs;
  for (const t of tables) {
    const f0 = await tableFingerprint(ref, t);
    for (const o of others) {
      const f = await tableFingerprint(o, t);
      if (f !== f0) {
        const rows = async (d: TestDb) =>
          (await d.query(`SELECT t::text AS r FROM ${t} t ORDER BY t::text COLLATE "C" LIMIT 20`)).rows.map((x: { r: string }) => x.r);
        assert.fail(
          `${context ? `${context}: ` : ''}${t} differs between ${ref.name} (${f0}) and ${o.name} (${f})\n${ref.name}: ${JSON.stringify(await rows(ref))}\n${o.name}: ${JSON.stringify(await rows(o))}`,
        );
      }
    }
  }
}

/** True when every database holds the same rows (no throw), for waitFor. */
export async function sameRows(dbs: TestDb[], tables: string[]): Promise<boolean> {
  for (const t of tables) {
    const fs = await Promise.all(dbs.map((d) => tableFingerprint(d, t)));
    if (fs.some((f) => f !== fs[0])) return false;
  }
  return true;
}

/**
 * Fingerprint read under fixed session settings, whatever the database's defaults are
 * (tests that set odd TimeZone/DateStyle defaults on one database compare values, not
 * their default text forms).
 */
export async function fixedFingerprint(db: TestDb, table: string): Promise<string> {
  const pg = (await import('pg')).default;
  const c = new pg.Client({
    ...db.cluster.clientConfig(db.dbname),
    options: '-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c extra_float_digits=3',
  });
  await c.connect();
  try {
    const r = await c.query(`SELECT count(*)::text AS n, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text COLLATE "C"), '')) AS h FROM ${table} t`);
    return `${r.rows[0].n}:${r.rows[0].h}`;
  } finally {
    await c.end();
  }
}

/**
 * Two one-way syncs of public.items from a: `to_b` and `to_down` (whose target the outage
 * tests stop). `syncExtra` is added to both syncs. Returns the topology file.
 */
export function twoSyncTopology(a: TestDb, b: TestDb, down: TestDb, syncExtra: Record<string, unknown> = {}): string {
  return writeTopology({
    version: 1,
    databases: { a: { url: a.url }, b: { url: b.url }, down: { url: down.url } },
    relgroups: { g: { tables: ['public.items'] } },
    syncs: {
      to_b: { relgroup: 'g', sources: ['a'], targets: ['b'], ...syncExtra },
      to_down: { relgroup: 'g', sources: ['a'], targets: ['down'], ...syncExtra },
    },
  });
}

/** Every object bucardo could have left: schemas, triggers, functions outside user schemas. */
export async function bucardoObjects(db: TestDb): Promise<string[]> {
  const r = await db.query<{ x: string }>(`
    SELECT 'schema ' || nspname AS x FROM pg_namespace WHERE nspname LIKE 'bucardo%'
    UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE 'bucardo%'
    UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE proname LIKE 'capture\\_%'
    ORDER BY 1`);
  return r.rows.map((x) => x.x);
}
