/**
 * What the target tests (target-sqlite, target-mariadb, target-redis) share: the type
 * table, one column per type family of the fidelity matrix, as each engine's mapping is
 * checked value by value (docs/targets.md), and the three rows SQLite and Redis take in
 * full (MariaDB refuses some of their values, by design, and inserts its own); a source
 * whose commit of the watermark fails; compare's differences in one line each.
 */
import assert from 'node:assert/strict';
import type { TestDb } from './env.js';
import { runCli } from './cli.js';

export const TARGET_MATRIX_PG = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TYPE pair AS (x integer, label text);
CREATE TABLE public.matrix (
  id bigint PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, bo boolean,
  n numeric, n2 numeric(40, 20), f8 float8, f4 float4, b bytea,
  ts timestamptz, ts3 timestamptz(3), tsl timestamp, d date, tm timetz, iv interval,
  arr integer[][], tarr text[], j json, jb jsonb, u uuid, ip inet, r4 int4range,
  m mood, p posint, c pair, x xml, big text,
  doubled integer GENERATED ALWAYS AS (p * 2) STORED
);`;

/** The three rows, written in a time zone far from UTC so that a mapping that ignores the zone shows. */
export async function insertTargetMatrix(a: TestDb): Promise<void> {
  await a.query(`SET TimeZone = 'Pacific/Chatham'`);
  await a.query(`INSERT INTO public.matrix (id, i2, i4, i8, bo, n, n2, f8, f4, b, ts, ts3, tsl, d, tm, iv, arr, tarr, j, jb, u, ip, r4, m, p, c, x, big) VALUES
    (1, -32768, 2147483647, 9223372036854775807, true, 'NaN', 12345678901234567890.12345678901234567890, 'Infinity', '-Infinity', '\\x00010200ff00'::bytea,
     '2024-02-29 23:59:59.999999+13:45', '2024-01-01 00:00:00.5+00', '1999-12-31 23:59:59.5', '0044-03-15 BC', '12:34:56.789+05:30', '1 year 2 mons -3 days 04:05:06.789',
     '{{1,NULL},{3,4}}', '{"a b","",NULL,"\\"q\\"","{}"}', '{"k": [1, 2.50, "x"]}', '{"b": {"c": null}, "a": 1e3}',
     'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2001:db8::1/64', '[1,10)', 'happy', 7, ROW(3, 'x "y"'), '<doc a="1">t&amp;x</doc>', 'short'),
    (2, 0, -1, -9223372036854775808, false, -0.0000000000000000001, 0, '-0', 'NaN', '', '-infinity', 'infinity', 'infinity', 'infinity', '00:00:00+00', '-178000000 years',
     '{}', '{}', 'null', '[]', '00000000-0000-0000-0000-000000000000', '0.0.0.0', 'empty', 'sad', 1, ROW(NULL, NULL), '<a/>',
     repeat('x', 100000) || E'\\u00e9\\u4e2d\\U0001F600'),
    (3, NULL, NULL, NULL, NULL, 1e-30, NULL, 1.7976931348623157e308, 1.4e-45, decode(repeat('00ff', 60000), 'hex'), '1970-01-01 00:00:00+00', NULL, '2000-01-01 00:00:00.000001', NULL, NULL, NULL,
     '{{{1}},{{NULL}}}', '{NULL}', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, E'tab\\there\\nnewline \\\\ backslash \\x01 \\r')`);
}

/** From now on, every run's commit on source `a` fails (at its watermark write): after the receivers committed. */
export async function refuseSourceCommit(a: TestDb): Promise<void> {
  await a.query(`CREATE FUNCTION public.fail_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'commit refused by the test'; END $$;
    CREATE CONSTRAINT TRIGGER fail_commit AFTER UPDATE ON bucardo_main.sync_state DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.fail_commit();
    ALTER TABLE bucardo_main.sync_state ENABLE ALWAYS TRIGGER fail_commit;`); // ALWAYS: the runner writes as replica
}

/** `compare SYNC --format json` that found differences (exit 2): rows per database, and each difference as kind:id:databases, sorted. */
export async function compareDifferences(file: string, sync: string): Promise<{ rows: Record<string, number>; kinds: string[] }> {
  const diff = await runCli(['compare', '-f', file, sync, '--format', 'json']);
  assert.equal(diff.code, 2, diff.stdout + diff.stderr);
  const out = JSON.parse(diff.stdout) as {
    equal: boolean;
    tables: { rows: Record<string, number>; differences: { key: Record<string, unknown>; kind: string; databases: string[] }[] }[];
  };
  assert.equal(out.equal, false);
  return {
    rows: out.tables[0].rows,
    kinds: out.tables[0].differences.map((d) => `${d.kind}:${String(d.key.id)}:${d.databases.join()}`).sort(),
  };
}
