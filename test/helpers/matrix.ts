/**
 * The cross-version scenarios (issue 13), written once and run on any group of clusters:
 * by versions.test (one mixed-major pair, in `npm test`) and by the whole matrix
 * (test/matrix/main.ts, `npm run test:matrix`: every major to itself, oldest to newest,
 * newest to oldest, and three sources on three majors).
 *
 * A scenario makes its own databases, the k-th on cluster k mod n: with a pair, a
 * three-source scenario puts its third source beside the first.
 */
import assert from 'node:assert/strict';
import type { Cluster } from '../../cli/demo/clusters.js';
import { simpleTopology, writeTopology, TestDb } from './env.js';
import { applyOk, runOnce, assertSame, fixedFingerprint } from './install.js';
import { TYPES_DDL, TYPES_INSERT } from './typematrix.js';
import { OWNER, APP, DDL as PRIV_DDL, SCHEMA_GRANTS, sqlAs, leastPrivilegeFiles } from './leastprivilege.js';
import { runCli } from './cli.js';

export interface Scenario {
  name: string;
  /** What it proves, for docs/compatibility.md. */
  about: string;
  /** Whether it runs on clusters of these majors (in group order). */
  fits(majors: number[]): boolean;
  run(dbs: (count: number, ddl: (major: number) => string) => Promise<TestDb[]>): Promise<void>;
}

/** The server's major, asked of the server itself: the proof must not trust the package name. */
export async function serverMajor(c: Cluster): Promise<number> {
  const r = await c.query<{ v: number }>('postgres', `SELECT current_setting('server_version_num')::int / 10000 AS v`);
  return r.rows[0].v;
}

let seq = 0;
/** `count` fresh databases spread over `clusters`, named a, b, c...; `ddl` is given each one's major. */
export async function makeScenarioDbs(clusters: Cluster[], tag: string, count: number, ddl: (major: number) => string): Promise<TestDb[]> {
  const n = ++seq;
  const dbs: TestDb[] = [];
  for (let i = 0; i < count; i++) {
    const c = clusters[i % clusters.length];
    const name = String.fromCharCode(97 + i);
    const db = new TestDb(c, `${tag}_${n}_${name}`, name);
    await c.createDatabase(db.dbname);
    const sql = ddl(await serverMajor(c));
    if (sql) await db.query(sql);
    dbs.push(db);
  }
  return dbs;
}

const ITEMS = `CREATE TABLE public.items (id integer PRIMARY KEY, name text NOT NULL, qty integer);`;
const nameOf = async (d: TestDb, id: number) => (await d.one('SELECT name FROM public.items WHERE id = $1', [id]))?.name ?? null;

const types: Scenario = {
  name: 'types',
  about: 'one-way sync of the type matrix (test/helpers/typematrix.ts), compared under fixed session settings',
  fits: (m) => m.length === 2,
  async run(make) {
    const [a, b] = await make(2, () => TYPES_DDL);
    const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ['public.matrix'] }));
    await applyOk(file);
    await a.query(TYPES_INSERT);
    await runOnce(file);
    assert.equal(await fixedFingerprint(b, 'public.matrix'), await fixedFingerprint(a, 'public.matrix'));
    await a.query(`UPDATE public.matrix SET big = big || 'more', f8 = '-0', p = 9 WHERE id IN (1, 2)`);
    await runOnce(file);
    assert.equal(await fixedFingerprint(b, 'public.matrix'), await fixedFingerprint(a, 'public.matrix'));
    assert.equal((await b.one('SELECT doubled FROM public.matrix WHERE id = 1')).doubled, 18, 'generated columns are computed on the receiver');
  },
};

const conflict: Scenario = {
  name: 'conflict',
  about: 'three sources, `conflict: latest`: updates of one row on every source, and a delete against an update, converge',
  fits: () => true,
  async run(make) {
    const [a, b, c] = await make(3, () => ITEMS);
    const file = writeTopology(simpleTopology({ sources: [a, b, c], tables: ['public.items'], sync: { conflict: 'latest' } }));
    await applyOk(file);
    await a.query(`INSERT INTO public.items SELECT i, 'item ' || i, 0 FROM generate_series(1, 10) i`);
    await runOnce(file);
    await assertSame([a, b, c], ['public.items'], 'seeded');
    await a.query(`UPDATE public.items SET name = 'a1' WHERE id = 1`);
    await b.query(`UPDATE public.items SET name = 'b1' WHERE id = 1`);
    await c.query(`UPDATE public.items SET name = 'c1' WHERE id = 1`); // the newest: c wins
    await c.query(`UPDATE public.items SET name = 'c2' WHERE id = 2`);
    await a.query(`UPDATE public.items SET name = 'a2' WHERE id = 2`); // the newest: a wins
    await b.query(`UPDATE public.items SET name = 'b3' WHERE id = 3`);
    await c.query(`DELETE FROM public.items WHERE id = 3`); // delete after update: gone everywhere
    await b.query(`INSERT INTO public.items VALUES (11, 'b11', 1)`);
    const r = await runOnce(file);
    assert.match(r.stdout, /conflicts=3/);
    await assertSame([a, b, c], ['public.items'], 'after conflicts');
    assert.deepEqual(await Promise.all([1, 2, 3, 11].map((id) => nameOf(b, id))), ['c1', 'a2', null, 'b11']);
  },
};

const onetimecopy: Scenario = {
  name: 'onetimecopy',
  about: '`onetimecopy: always` replaces a target that has rows of its own, then deltas follow',
  fits: (m) => m.length === 2,
  async run(make) {
    const [a, b] = await make(2, () => ITEMS);
    await a.query(`INSERT INTO public.items SELECT i, 'item ' || i, i FROM generate_series(1, 5000) i`);
    await b.query(`INSERT INTO public.items SELECT i, 'stale ' || i, -i FROM generate_series(4000, 6000) i`);
    const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ['public.items'], sync: { onetimecopy: 'always' } }));
    await applyOk(file);
    await runOnce(file);
    await assertSame([a, b], ['public.items'], 'after the copy');
    await a.query(`UPDATE public.items SET qty = 0 WHERE id <= 10`);
    await runOnce(file);
    await assertSame([a, b], ['public.items'], 'after a delta');
  },
};

const sequence: Scenario = {
  name: 'sequence',
  about: "a sequence feeding a table's key: the target's sequence follows the source's",
  fits: (m) => m.length === 2,
  async run(make) {
    const ddl = `CREATE SEQUENCE public.order_ids; CREATE TABLE public.orders (id bigint PRIMARY KEY DEFAULT nextval('public.order_ids'), who text);`;
    const [a, b] = await make(2, () => ddl);
    const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: ['public.orders'], sequences: ['public.order_ids'] }));
    await applyOk(file);
    await a.query(`INSERT INTO public.orders (who) SELECT 'a' FROM generate_series(1, 25)`);
    await runOnce(file);
    await assertSame([a, b], ['public.orders']);
    const last = async (d: TestDb) => (await d.one('SELECT last_value::text AS v FROM public.order_ids')).v as string;
    assert.equal(await last(b), '25');
    assert.equal((await b.one(`SELECT nextval('public.order_ids')::text AS v`)).v, '26', 'the next id handed out on the target is past the copied rows');
  },
};

/** PostgreSQL 18: virtual generated columns and uuidv7(); older majors get the same table with a stored column and gen_random_uuid(). */
const virtualDdl = (major: number) =>
  major >= 18
    ? `CREATE TABLE public.events (id uuid PRIMARY KEY DEFAULT uuidv7(), n integer NOT NULL, twice integer GENERATED ALWAYS AS (n * 2) VIRTUAL);`
    : `CREATE TABLE public.events (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), n integer NOT NULL, twice integer GENERATED ALWAYS AS (n * 2) STORED);`;

const virtual: Scenario = {
  name: 'pg18-virtual',
  about:
    'every database a source of a table keyed by `uuid DEFAULT uuidv7()` with a `GENERATED ALWAYS AS (n * 2) VIRTUAL` column (on PostgreSQL 18; STORED and gen_random_uuid() on older majors)',
  fits: (m) => m.some((x) => x >= 18),
  async run(make) {
    const dbs = await make(3, virtualDdl);
    const file = writeTopology(simpleTopology({ sources: dbs, tables: ['public.events'] }));
    await applyOk(file);
    for (const [i, d] of dbs.entries()) await d.query(`INSERT INTO public.events (n) SELECT g FROM generate_series($1::int, $1::int + 9) g`, [i * 100]);
    await runOnce(file);
    await assertSame(dbs, ['public.events'], 'after inserts');
    await dbs[0].query(`UPDATE public.events SET n = n + 1000 WHERE n >= 100`);
    await runOnce(file);
    await assertSame(dbs, ['public.events'], 'after updates');
    for (const d of dbs) {
      const r = await d.one('SELECT count(*) FILTER (WHERE twice = n * 2 AND n >= 1100)::int AS moved, count(*)::int AS k FROM public.events');
      assert.deepEqual(r, { moved: 20, k: 30 }, `on ${d.name}, the generated column follows the replicated n`);
    }
  },
};

const leastPrivilege: Scenario = {
  name: 'least-privilege',
  about: "apply as an owner role, run and plan as a runner role that is not a superuser, with the README's grants (test/helpers/leastprivilege.ts)",
  fits: (m) => m.length === 2,
  async run(make) {
    const [a, b] = await make(2, () => PRIV_DDL);
    const { ownerFile, runnerFile } = await leastPrivilegeFiles(a, b);
    await applyOk(ownerFile);
    for (const d of [a, b]) await sqlAs(OWNER, d, SCHEMA_GRANTS);
    const plan = await runCli(['plan', '-f', runnerFile]);
    assert.equal(plan.code, 0, plan.out);
    assert.match(plan.stdout, /No changes\./, plan.out);
    await sqlAs(APP, a, `INSERT INTO public.items SELECT i, 'a' || i FROM generate_series(1, 20) i`);
    await sqlAs(APP, b, `INSERT INTO public.items SELECT i, 'b' || i FROM generate_series(101, 110) i`);
    await runOnce(runnerFile);
    await assertSame([a, b], ['public.items']);
  },
};

export const SCENARIOS: Scenario[] = [types, conflict, onetimecopy, sequence, virtual, leastPrivilege];
