/**
 * Redis targets (SPEC section 7, docs/targets.md "Redis"): a real PostgreSQL source, a real
 * redis-server (Debian's, started by the test on a free port as an unprivileged user:
 * test/helpers/redis.ts), the real CLI. Each test writes into its own Redis db number.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { useClusters, writeTopology, waitFor, type TestDb } from '../helpers/env.js';
import { applyOk, runOnce } from '../helpers/install.js';
import { runCli, spawnCli } from '../helpers/cli.js';
import { useRedis, REDIS_PASSWORD } from '../helpers/redis.js';
import { TARGET_MATRIX_PG, insertTargetMatrix, refuseSourceCommit, compareDifferences } from '../helpers/targets.js';

const env = useClusters(['a']);
const server = useRedis();
let nextDb = 0;

type Hash = Record<string, string>;
interface Client {
  connect(): Promise<unknown>;
  sendCommand(args: (string | Buffer)[], o?: unknown): Promise<unknown>;
  destroy(): void;
  on(e: 'error', fn: () => void): unknown;
}
const redis = createRequire(import.meta.url)('redis') as {
  createClient(o: { url: string }): Client;
  RESP_TYPES: { BLOB_STRING: number };
};

/** A fresh Redis db of the test server, and what the tests read from it. */
async function freshRedis() {
  const db = ++nextDb;
  const url = server().url(db);
  const cmd = async (...args: (string | Buffer)[]) => {
    const c = redis.createClient({ url });
    c.on('error', () => {});
    await c.connect();
    try {
      return await c.sendCommand(args, { typeMapping: { [redis.RESP_TYPES.BLOB_STRING]: Buffer } });
    } finally {
      c.destroy();
    }
  };
  const text = (v: unknown): unknown => (Buffer.isBuffer(v) ? v.toString('utf8') : Array.isArray(v) ? v.map(text) : v);
  return {
    db,
    url,
    cmd,
    /** Every key but the bookkeeping, sorted (SCAN: KEYS is for tests too slow to matter, but SCAN is what bucardo uses). */
    async keys(): Promise<string[]> {
      const out: string[] = [];
      let cursor = '0';
      do {
        const [next, keys] = text(await cmd('SCAN', cursor, 'COUNT', '1000')) as [string, string[]];
        out.push(...keys);
        cursor = next;
      } while (cursor !== '0');
      return out.filter((k) => !k.startsWith('bucardo:')).sort();
    },
    async hash(key: string): Promise<Hash> {
      const h = (await cmd('HGETALL', key)) as Record<string, Buffer>;
      return Object.fromEntries(Object.entries(h).map(([k, v]) => [k, v.toString('utf8')]));
    },
    async raw(key: string, field: string): Promise<Buffer | null> {
      return (await cmd('HGET', key, field)) as Buffer | null;
    },
    async state(sync: string): Promise<Hash> {
      return this.hash(`bucardo:sync_state:${sync}`);
    },
  };
}
type Target = Awaited<ReturnType<typeof freshRedis>>;

function topology(a: TestDb, r: Target, sync: Record<string, unknown> = {}, tables: unknown[] = ['public.items']): string {
  return writeTopology({
    version: 1,
    databases: { a: { url: a.url }, cache: { type: 'redis', url: r.url } },
    relgroups: { g: { tables } },
    syncs: { s1: { relgroup: 'g', sources: ['a'], targets: ['cache'], ...sync } },
  });
}

const ITEMS_PG = `CREATE TABLE public.items (id integer PRIMARY KEY, name text, qty bigint, price numeric(12,2));`;

/** The source's rows as Redis should hold them: key -> hash, NULL columns without a field. */
async function sourceItems(a: TestDb): Promise<Record<string, Hash>> {
  const r = await a.query(`SELECT id::text, name, qty::text, price::text FROM public.items ORDER BY id`);
  const out: Record<string, Hash> = {};
  for (const row of r.rows) out[`public.items:${row.id}`] = Object.fromEntries(Object.entries(row).filter(([, v]) => v !== null)) as Hash;
  return out;
}

async function heldItems(r: Target): Promise<Record<string, Hash>> {
  const out: Record<string, Hash> = {};
  for (const k of await r.keys()) if (k.startsWith('public.items:')) out[k] = await r.hash(k);
  return out;
}

test('plan needs nothing installed on Redis and names an unreachable server without its password', async () => {
  const [a] = await env.fresh('plan', ITEMS_PG);
  const r = await freshRedis();
  const file = topology(a, r);
  const ok = await runCli(['plan', '-f', file, '--detailed-exitcode']);
  assert.equal(ok.code, 2, ok.stdout + ok.stderr);
  assert.doesNotMatch(ok.stdout, /cache/, 'no change on the redis database');
  await applyOk(file);
  const again = await runCli(['plan', '-f', file, '--detailed-exitcode']);
  assert.equal(again.code, 0, again.stdout + again.stderr);
  assert.deepEqual(await r.keys(), []);
  const down = writeTopology({
    version: 1,
    databases: { a: { url: a.url }, cache: { type: 'redis', host: '127.0.0.1', port: 1, db: 3, password: REDIS_PASSWORD } },
    relgroups: { g: { tables: ['public.items'] } },
    syncs: { s1: { relgroup: 'g', sources: ['a'], targets: ['cache'] } },
  });
  const bad = await runCli(['plan', '-f', down]);
  assert.equal(bad.code, 1, bad.stdout + bad.stderr);
  assert.match(bad.stderr, /redis database cache \(127\.0\.0\.1:1 db 3\) is unavailable: .*ECONNREFUSED/);
  const wrongPass = writeTopology({
    version: 1,
    databases: { a: { url: a.url }, cache: { type: 'redis', url: `redis://:not-${REDIS_PASSWORD}@127.0.0.1:${server().port}/4` } },
    relgroups: { g: { tables: ['public.items'] } },
    syncs: { s1: { relgroup: 'g', sources: ['a'], targets: ['cache'] } },
  });
  const auth = await runCli(['plan', '-f', wrongPass]);
  assert.equal(auth.code, 1, auth.stdout + auth.stderr);
  assert.match(auth.stderr, /redis database cache \(127\.0\.0\.1:\d+ db 4\) is unavailable: WRONGPASS/);
  for (const out of [ok, bad, auth]) assert.doesNotMatch(out.stdout + out.stderr, new RegExp(REDIS_PASSWORD));
});

test('onetimecopy, then inserts, updates, NULLs, deletes, key changes and a TRUNCATE reach the hashes; status shows the target', async () => {
  const [a] = await env.fresh('delta', ITEMS_PG);
  await a.query(`INSERT INTO public.items SELECT i, 'item ' || i, i * 10, i * 1.5 FROM generate_series(1, 50) i`);
  const r = await freshRedis();
  const file = topology(a, r);
  await applyOk(file);
  await runOnce(file);
  assert.deepEqual(await heldItems(r), await sourceItems(a), 'after the onetimecopy');
  assert.deepEqual(await r.hash('public.items:7'), { id: '7', name: 'item 7', qty: '70', price: '10.50' });
  await a.query(`INSERT INTO public.items VALUES (100, 'new', NULL, 0.01)`);
  await a.query(`UPDATE public.items SET name = 'changed ☃ 😀', price = 1234567890.99 WHERE id <= 5`);
  await a.query(`UPDATE public.items SET qty = NULL, name = NULL WHERE id = 6`);
  await a.query(`DELETE FROM public.items WHERE id BETWEEN 40 AND 45`);
  await a.query(`UPDATE public.items SET id = id + 1000 WHERE id IN (10, 11)`);
  await runOnce(file);
  assert.deepEqual(await heldItems(r), await sourceItems(a), 'after the deltas');
  assert.deepEqual(await r.hash('public.items:6'), { id: '6', price: '9.00' }, 'a column that became NULL loses its field');
  assert.deepEqual(await r.hash('public.items:10'), {}, 'the old key of a key change is gone');
  assert.equal((await r.state('s1')).run_seq, '2');
  await a.query(`TRUNCATE public.items`);
  await a.query(`INSERT INTO public.items VALUES (7, 'after truncate', 1, 1)`);
  await runOnce(file);
  assert.deepEqual(await r.keys(), ['public.items:7'], 'after the TRUNCATE');
  const st = await runCli(['status', '-f', file, '--format', 'json']);
  assert.equal(st.code, 0, st.stdout + st.stderr);
  const report = JSON.parse(st.stdout) as { syncs: { pending: number }[]; targets: Record<string, unknown>[] };
  assert.equal(report.syncs[0].pending, 0);
  assert.deepEqual(
    report.targets.map((t) => [t.database, t.type, t.run_seq, t.rows]),
    [['cache', 'redis', 3, 1]],
  );
  const text = await runCli(['status', '-f', file]);
  assert.match(text.stdout, /sync s1: redis database cache at run 3, last written \S+ \S+ \(1 row\)/);
  assert.doesNotMatch(text.stdout + st.stdout, new RegExp(REDIS_PASSWORD));
});

/** Columns whose field is PostgreSQL's own text output, unchanged (docs/targets.md). */
const AS_TEXT = ['i2', 'i4', 'i8', 'n', 'n2', 'f8', 'f4', 'd', 'tm', 'iv', 'arr', 'tarr', 'j', 'jb', 'u', 'ip', 'r4', 'm', 'p', 'c', 'x', 'big'];

test('types map value by value (docs/targets.md), NULL columns have no field, and compare agrees', async () => {
  const [a] = await env.fresh('types', TARGET_MATRIX_PG);
  const r = await freshRedis();
  const file = topology(a, r, {}, ['public.matrix']);
  await applyOk(file);
  await insertTargetMatrix(a);
  await runOnce(file);
  const [r1, r2, r3] = [await r.hash('public.matrix:1'), await r.hash('public.matrix:2'), await r.hash('public.matrix:3')];
  const exact: [Hash, Hash][] = [
    [r1, { id: '1', bo: '1', n: 'NaN', n2: '12345678901234567890.12345678901234567890', f8: 'Infinity', f4: '-Infinity', i8: '9223372036854775807' }],
    [r1, { ts: '2024-02-29T10:14:59.999999Z', ts3: '2024-01-01T00:00:00.500000Z', tsl: '1999-12-31T23:59:59.500000', p: '7' }],
    [r2, { bo: '0', n: '-0.0000000000000000001', n2: '0.00000000000000000000', f8: '-0', f4: 'NaN', ts: '-infinity', ts3: 'infinity', tsl: 'infinity' }],
    [
      r3,
      {
        n: '0.000000000000000000000000000001',
        f8: '1.7976931348623157e+308',
        f4: '1e-45',
        ts: '1970-01-01T00:00:00.000000Z',
        tsl: '2000-01-01T00:00:00.000001',
      },
    ],
  ];
  for (const [row, want] of exact) for (const [k, v] of Object.entries(want)) assert.equal(row[k], v, `column ${k} of row ${row.id}`);
  for (const c of ['i2', 'bo', 'n2', 'ts3', 'd', 'j', 'c']) assert.equal(r3[c], undefined, `NULL column ${c} has no field`);
  assert.equal(r1.doubled, undefined, 'generated columns are not sent');
  assert.deepEqual(await r.raw('public.matrix:1', 'b'), Buffer.from('00010200ff00', 'hex'), 'bytea as its raw bytes');
  assert.deepEqual(await r.raw('public.matrix:2', 'b'), Buffer.alloc(0));
  assert.equal((await r.raw('public.matrix:3', 'b'))?.length, 120000);
  // every other column holds PostgreSQL's own text, read here under the runner's fixed settings
  const cols = AS_TEXT.map((c) => `CASE WHEN num_nulls(${c}) = 0 THEN concat(${c}) END AS ${c}`).join(', ');
  const pgRows = await a.query(
    `SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 1; SELECT ${cols} FROM public.matrix ORDER BY id`,
  );
  const pgText = (pgRows as unknown as { rows: Record<string, string | null>[] }[])[4].rows;
  for (const [i, row] of [r1, r2, r3].entries()) for (const c of AS_TEXT) assert.equal(row[c], pgText[i][c] ?? undefined, `column ${c} of row ${i + 1}`);
  assert.equal(r1.jb, '{"a": 1000, "b": {"c": null}}');
  assert.equal(r1.tarr, '{"a b","",NULL,"\\"q\\"","{}"}');
  assert.equal(r2.big.slice(-5), 'xé中😀', 'unicode beyond the BMP too');
  assert.equal(r3.big, 'tab\there\nnewline \\ backslash \x01 \r');
  const cmp = await runCli(['compare', '-f', file, 's1']);
  assert.equal(cmp.code, 0, cmp.stdout + cmp.stderr);
});

test('keys with ":", "\\" and a dotted schema never collide, and the SPEC naming holds for plain values', async () => {
  const [a] = await env.fresh(
    'keys',
    `CREATE SCHEMA "we.ird"; CREATE TABLE "we.ird"."t:1" (k1 text, k2 text, v int, PRIMARY KEY (k1, k2));
     CREATE SCHEMA we; CREATE TABLE we."ird.t:1" (k1 text, k2 text, v int, PRIMARY KEY (k1, k2));
     CREATE TABLE public.plain (a int, b date, v int, PRIMARY KEY (a, b));`,
  );
  await a.query(`INSERT INTO "we.ird"."t:1" VALUES ('a:b', 'c', 1), ('a', 'b:c', 2), ('a\\', ':c', 3), ('a', 'N', 4), ('a', '\\N', 5), ('', '', 6)`);
  await a.query(`INSERT INTO we."ird.t:1" VALUES ('a:b', 'c', 7)`);
  await a.query(`INSERT INTO public.plain VALUES (1, '2024-02-29', 8)`);
  const r = await freshRedis();
  const file = topology(a, r, {}, ['"we.ird"."t:1"', 'we."ird.t:1"', 'public.plain']);
  await applyOk(file);
  await runOnce(file);
  assert.deepEqual(await r.keys(), [
    'public.plain:1:2024-02-29',
    'we.ird\\.t\\:1:a\\:b:c',
    'we\\.ird.t\\:1::',
    'we\\.ird.t\\:1:a:N',
    'we\\.ird.t\\:1:a:\\\\N',
    'we\\.ird.t\\:1:a:b\\:c',
    'we\\.ird.t\\:1:a\\:b:c',
    'we\\.ird.t\\:1:a\\\\:\\:c',
  ]);
  assert.deepEqual(await r.hash('we\\.ird.t\\:1:a:\\\\N'), { k1: 'a', k2: '\\N', v: '5' });
  // a TRUNCATE of one table leaves the other, whose escaped name shares the characters
  await a.query(`TRUNCATE "we.ird"."t:1"; UPDATE public.plain SET v = 9`);
  await runOnce(file);
  assert.deepEqual(await r.keys(), ['public.plain:1:2024-02-29', 'we.ird\\.t\\:1:a\\:b:c']);
  const cmp = await runCli(['compare', '-f', file, 's1']);
  assert.equal(cmp.code, 0, cmp.stdout + cmp.stderr);
});

test('a fullcopy sync replaces the hashes of the table each run', async () => {
  const [a] = await env.fresh('full', ITEMS_PG);
  await a.query(`INSERT INTO public.items SELECT i, 'item ' || i, i, i FROM generate_series(1, 20) i`);
  const r = await freshRedis();
  await r.cmd('HSET', 'public.items:999', 'id', '999', 'name', 'stale');
  await r.cmd('SET', 'public.other:1', 'not ours');
  const file = topology(a, r, { kind: 'fullcopy' });
  await applyOk(file);
  await runOnce(file);
  assert.deepEqual(await heldItems(r), await sourceItems(a));
  await a.query(`DELETE FROM public.items WHERE id > 10; UPDATE public.items SET name = 'again', qty = NULL`);
  await runOnce(file);
  assert.deepEqual(await heldItems(r), await sourceItems(a));
  assert.equal(String(await r.cmd('GET', 'public.other:1')), 'not ours', "another table's key is left alone");
});

test('onetimecopy if_empty skips a table that already has a hash in Redis (SCAN for one key of its prefix)', async () => {
  const [a] = await env.fresh('ifempty', ITEMS_PG);
  await a.query(`INSERT INTO public.items SELECT i, 'item ' || i, i, i FROM generate_series(1, 5) i`);
  const r = await freshRedis();
  await r.cmd('HSET', 'public.items:1', 'id', '1', 'name', 'mine');
  await r.cmd('HSET', 'public.itemsx:1', 'id', '1');
  const file = topology(a, r, { onetimecopy: 'if_empty' });
  await applyOk(file);
  await runOnce(file);
  assert.deepEqual(await r.keys(), ['public.items:1', 'public.itemsx:1'], 'not copied: the table holds a row');
  await a.query(`UPDATE public.items SET qty = 0 WHERE id = 2`);
  await runOnce(file);
  assert.deepEqual(await r.hash('public.items:2'), { id: '2', name: 'item 2', qty: '0', price: '2.00' });
  assert.deepEqual(await r.hash('public.items:1'), { id: '1', name: 'mine' });
});

test('compare finds hashes missing, extra and different in Redis', async () => {
  const [a] = await env.fresh('cmp', ITEMS_PG);
  await a.query(`INSERT INTO public.items SELECT i, 'item ' || i, i, i FROM generate_series(1, 30) i`);
  const r = await freshRedis();
  const file = topology(a, r);
  await applyOk(file);
  await runOnce(file);
  const same = await runCli(['compare', '-f', file, 's1']);
  assert.equal(same.code, 0, same.stdout + same.stderr);
  assert.match(same.stdout, /cache/);
  await r.cmd('HSET', 'public.items:3', 'price', '3.001');
  await r.cmd('HSET', 'public.items:5', 'stray', 'x');
  await r.cmd('HSET', 'public.items:6', 'id', '66');
  await r.cmd('DEL', 'public.items:4');
  await r.cmd('HSET', 'public.items:77', 'id', '77', 'name', 'x');
  await r.cmd('DEL', 'public.items:8');
  await r.cmd('SET', 'public.items:8', 'a string, not a hash');
  const diff = await compareDifferences(file, 's1');
  assert.deepEqual(diff.rows, { a: 30, cache: 30 });
  assert.deepEqual(diff.kinds, ['different:3:cache', 'different:5:cache', 'different:6:cache', 'different:8:cache', 'extra:77:cache', 'missing:4:cache']);
});

test('a PostgreSQL commit failing after Redis committed: the run is redone, nothing lost or doubled', async () => {
  const [a] = await env.fresh('crash', ITEMS_PG);
  await a.query(`INSERT INTO public.items SELECT i, 'item ' || i, i, i FROM generate_series(1, 2000) i`);
  const r = await freshRedis();
  const file = topology(a, r);
  await applyOk(file);
  await runOnce(file);
  // the source's watermark write fails at COMMIT: after the Redis EXEC (foreign.ts)
  await refuseSourceCommit(a);
  await a.query(
    `UPDATE public.items SET qty = qty + 1000 WHERE id <= 1500; DELETE FROM public.items WHERE id > 1900; INSERT INTO public.items VALUES (5000, 'new', 1, 1)`,
  );
  const failed = await runOnce(file, [], 1);
  assert.match(failed.stderr + failed.stdout, /commit refused by the test/);
  assert.equal((await r.state('s1')).run_seq, '2', 'Redis committed the run');
  assert.equal((await a.one(`SELECT run_seq FROM bucardo_main.sync_state`)).run_seq, '1', 'the source did not');
  await a.query(
    `UPDATE public.items SET name = 'twice', qty = NULL WHERE id BETWEEN 1400 AND 1600; DELETE FROM public.items WHERE id = 5000; INSERT INTO public.items VALUES (6000, 'later', 2, 2)`,
  );
  await a.query(`DROP TRIGGER fail_commit ON bucardo_main.sync_state`);
  await runOnce(file);
  assert.deepEqual(await heldItems(r), await sourceItems(a));
  assert.equal((await r.state('s1')).run_seq, '3');
});

test('the runner killed (SIGKILL) inside its MULTI: nothing applied in Redis, the next run catches up', async () => {
  const [a] = await env.fresh('kill', ITEMS_PG);
  const r = await freshRedis();
  const file = topology(a, r);
  await applyOk(file);
  await runOnce(file);
  await a.query(`INSERT INTO public.items SELECT i, 'item ' || i, i, i FROM generate_series(1, 60000) i`);
  const run = spawnCli(['run', '-f', file, '--once']);
  // CLIENT LIST shows a connection's queued commands (multi=N): the run is writing
  const queued = async () => {
    const list = String(await r.cmd('CLIENT', 'LIST'));
    return Math.max(0, ...[...list.matchAll(/ multi=(\d+)/g)].map((m) => Number(m[1])));
  };
  await waitFor(async () => (await queued()) > 15_000, 'the run queueing its writes', 120_000, 20);
  run.kill('SIGKILL');
  await run.exited;
  await waitFor(async () => (await queued()) <= 0, 'Redis dropping the killed connection', 10_000, 20);
  assert.equal(Number(await r.cmd('DBSIZE')), 1, 'the killed run applied nothing: only the watermark is there');
  assert.equal((await r.state('s1')).run_seq, '1');
  await a.query(`UPDATE public.items SET qty = -qty WHERE id % 1000 = 0; DELETE FROM public.items WHERE id > 59000`);
  await runOnce(file);
  assert.equal(Number(await r.cmd('DBSIZE')), 59001);
  const cmp = await runCli(['compare', '-f', file, 's1']);
  assert.equal(cmp.code, 0, cmp.stdout + cmp.stderr);
});

test('Redis down fails only its sync, fast and naming the server; back up, the run catches up', async () => {
  const [a, b] = [...(await env.fresh('down', ITEMS_PG)), ...(await env.fresh('downpg', ITEMS_PG))];
  const r = await freshRedis();
  const file = writeTopology({
    version: 1,
    databases: { a: { url: a.url }, b: { url: b.url }, cache: { type: 'redis', url: r.url } },
    relgroups: { g: { tables: ['public.items'] } },
    syncs: { to_cache: { relgroup: 'g', sources: ['a'], targets: ['cache'] }, to_pg: { relgroup: 'g', sources: ['a'], targets: ['b'] } },
  });
  await applyOk(file);
  await runOnce(file);
  await a.query(`INSERT INTO public.items SELECT i, 'item ' || i, i, i FROM generate_series(1, 100) i`);
  await r.cmd('SAVE'); // the test server keeps no data otherwise: a restart should find the watermark
  await server().stop();
  // one `run --once`: its runs of to_cache fail (and are retried) while to_pg goes on; the
  // server back, a retry catches up and the command exits 0
  const run = spawnCli(['run', '-f', file, '--once']);
  const said = () => run.output().stdout + run.output().stderr;
  try {
    await waitFor(() => /redis database cache \(127\.0\.0\.1:\d+ db \d+\) is unavailable/.test(said()), 'a run of to_cache failing', 30_000);
    await waitFor(async () => (await b.one('SELECT count(*)::int AS n FROM public.items')).n === 100, 'the PostgreSQL sync running', 30_000);
    assert.equal(run.child.exitCode, null, 'still retrying');
    await a.query(`UPDATE public.items SET name = 'while down' WHERE id <= 10`);
  } finally {
    await server().start();
  }
  assert.equal((await run.exited).code, 0, said());
  assert.doesNotMatch(said(), new RegExp(REDIS_PASSWORD));
  assert.deepEqual(await heldItems(r), await sourceItems(a));
  assert.equal((await r.state('to_cache')).run_seq, '2');
});
