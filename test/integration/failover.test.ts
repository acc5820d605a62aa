/**
 * Runners that fail over (issue 13): two `bucardo run` on one file, the active one
 * SIGKILLed under a stream of inserts, and a runner cut off from a database of its run by
 * the network (a TCP proxy between it and the database, stopped mid-run). Nothing may be
 * lost or applied twice: the target logs every row its replicated table receives (an
 * ENABLE ALWAYS trigger, so it fires under the runner's replica role too, and rolls back
 * with the run that wrote it), and each id must be there exactly once, as one INSERT.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import pg from 'pg';
import { useClusters, simpleTopology, writeTopology, waitFor, type TestDb } from '../helpers/env.js';
import { applyOk, runOnce } from '../helpers/install.js';
import { runCli, spawnCli } from '../helpers/cli.js';
import { parseRunnerAppName } from '../../engine/runner/connections.js';

const env = useClusters(['a', 'b']);

const DDL = `
CREATE TABLE public.events (id bigint PRIMARY KEY, v text NOT NULL);
CREATE TABLE public.gate (id integer PRIMARY KEY);
CREATE TABLE public.applied (n bigserial PRIMARY KEY, id bigint NOT NULL, op text NOT NULL,
  app text NOT NULL DEFAULT current_setting('application_name'), xid xid8 NOT NULL DEFAULT pg_current_xact_id());
CREATE FUNCTION public.log_applied() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.applied (id, op) VALUES (CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END, TG_OP);
  RETURN NULL;
END $$;
CREATE TRIGGER log_applied AFTER INSERT OR UPDATE OR DELETE ON public.events FOR EACH ROW EXECUTE FUNCTION public.log_applied();
ALTER TABLE public.events ENABLE ALWAYS TRIGGER log_applied;
`;
const TABLES = ['public.events', 'public.gate'];

type Runner = ReturnType<typeof spawnCli>;

interface RunnersJson {
  sync: string;
  holding: { host: string | null; pid: number } | null;
  last_run_by: { host: string | null; pid: number } | null;
  connected: { host: string | null; pid: number }[];
}

async function runnersOf(file: string): Promise<RunnersJson> {
  const r = await runCli(['status', '-f', file, '--format', 'json']);
  assert.equal(r.code, 0, r.out);
  return JSON.parse(r.stdout).runners[0];
}

const countOn = async (d: TestDb) => Number((await d.one(`SELECT count(*)::int AS n FROM public.events`)).n);

/** Inserts ids 1, 2, 3... on `db`, one per transaction, until stop(); `last()`: the highest committed. */
function startWriter(db: TestDb) {
  const c = new pg.Client(db.cluster.clientConfig(db.dbname));
  let last = 0;
  let stopping = false;
  const done = (async () => {
    await c.connect();
    while (!stopping) {
      await c.query(`INSERT INTO public.events VALUES ($1, 'x')`, [last + 1]);
      last++;
      // a steady stream, not a flood: the runners share 2 cores with the clusters
      await new Promise((r) => setTimeout(r, 5));
    }
    await c.end();
  })();
  return {
    last: () => last,
    async stop() {
      stopping = true;
      await done;
      return last;
    },
  };
}

/**
 * Every id 1..n on the target exactly once, and each id written by one committed
 * transaction only (a run that was applied twice, or a cut-off run's writes committing,
 * would show a second one). Within its one transaction an id may be written more than
 * once: a first run copies the table whole, then applies its pending keys (receive.ts).
 * Returns the writers' application_names.
 */
async function assertEachOnce(target: TestDb, n: number): Promise<Set<string>> {
  const rows = await target.one(`SELECT count(*)::int AS n, count(DISTINCT id)::int AS d, min(id)::int AS lo, max(id)::int AS hi FROM public.events`);
  assert.deepEqual(rows, { n, d: n, lo: 1, hi: n }, 'every inserted id on the target');
  const twice = await target.query(
    `SELECT id, array_agg(op || ' by ' || app || ' in ' || xid ORDER BY n) AS ops FROM public.applied GROUP BY id HAVING count(DISTINCT xid) > 1 ORDER BY id LIMIT 5`,
  );
  assert.deepEqual(twice.rows, [], 'an id written by two committed transactions');
  const logged = await target.one(`SELECT count(DISTINCT id)::int AS d FROM public.applied`);
  assert.equal(logged.d, n, 'every id logged');
  const apps = await target.query<{ app: string }>(`SELECT DISTINCT app FROM public.applied`);
  return new Set(apps.rows.map((r) => r.app));
}

test('two runners on one file: the active one SIGKILLed three times under a stream of inserts; nothing lost or doubled', async () => {
  const [a, b] = await env.fresh('failover', DDL);
  const file = writeTopology(simpleTopology({ sources: [a], targets: [b], tables: TABLES }));
  await applyOk(file);
  const runners = new Map<number, Runner>();
  const spawn = () => {
    const r = spawnCli(['run', '-f', file]);
    runners.set(r.child.pid!, r);
  };
  spawn();
  spawn();
  const writer = startWriter(a);
  try {
    // status sees both runners connected for the sync
    await waitFor(async () => (await runnersOf(file)).connected.length === 2, 'both runners connected in status');
    const pids = (await runnersOf(file)).connected.map((r) => r.pid).sort();
    assert.deepEqual(pids, [...runners.keys()].sort());
    const survivors: number[] = [];
    for (let kill = 0; kill < 3; kill++) {
      // the active runner: the one holding the sync, else the one that ran it last
      const active = await waitFor(async () => {
        const r = await runnersOf(file);
        const who = r.holding ?? r.last_run_by;
        return who && runners.has(who.pid) ? who.pid : 0;
      }, 'a run by one of the live runners');
      runners.get(active)!.kill('SIGKILL');
      await runners.get(active)!.exited;
      runners.delete(active);
      const before = await countOn(b);
      const [survivor] = [...runners.keys()];
      await waitFor(
        async () => (await countOn(b)) > before + 10 && (await runnersOf(file)).last_run_by?.pid === survivor,
        `the other runner (${survivor}) taking over after kill ${kill + 1}`,
        60_000,
      );
      survivors.push(survivor);
      spawn();
    }
    const n = await writer.stop();
    await waitFor(async () => (await countOn(b)) === n, `all ${n} rows on b`, 60_000);
    const writers = await assertEachOnce(b, n);
    const writerPids = new Set([...writers].map((w) => parseRunnerAppName(w)?.pid));
    for (const s of survivors) assert.ok(writerPids.has(s), `runner ${s} took over and wrote rows: ${[...writers].join(', ')}`);
  } finally {
    await writer.stop();
    await Promise.all([...runners.values()].map((r) => r.stop()));
  }
});

/** A TCP proxy to `port` on 127.0.0.1; cut() stops listening and destroys every connection through it. */
async function startProxy(port: number) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

test('a runner cut off from a database mid-run commits nothing there or anywhere; the other runner takes the sync and the result is right', async () => {
  const [a, b] = await env.fresh('fencing', DDL);
  const topology = simpleTopology({ sources: [a], targets: [b], tables: TABLES });
  const file = writeTopology(topology);
  await applyOk(file);
  const proxy = await startProxy(b.cluster.port);
  const viaProxy = structuredClone(topology) as { databases: Record<string, { url: string }> };
  const u = new URL(b.url);
  u.port = String(proxy.port);
  viaProxy.databases[b.name].url = u.toString();
  const cutFile = writeTopology(viaProxy);

  // a first run, so that the next applies changes (a first run into empty tables empties them first, locking them all)
  await a.query(`INSERT INTO public.events VALUES (1, 'x')`);
  await a.query(`INSERT INTO public.gate VALUES (1)`);
  await runOnce(file);
  const n = 5000;
  await a.query(`INSERT INTO public.events SELECT i, 'x' FROM generate_series(2, $1::int) i`, [n]);
  await a.query(`INSERT INTO public.gate SELECT i FROM generate_series(2, 10) i`);
  // an application transaction on b holds public.gate, so the run waits in b, its fence held
  const app = new pg.Client(b.cluster.clientConfig(b.dbname));
  await app.connect();
  let cut: Runner | null = null;
  let other: Runner | null = null;
  try {
    await app.query('BEGIN; LOCK TABLE public.gate IN ACCESS EXCLUSIVE MODE');
    cut = spawnCli(['run', '-f', cutFile]);
    const cutPid = cut.child.pid!;
    await waitFor(
      async () =>
        (
          await b.one(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND application_name LIKE $1`,
            [`bucardo:s1:write:${cutPid}%`],
          )
        ).n === 1,
      'the cut-off runner waiting in its run on b',
    );
    // by then it has written public.events there: those are the writes that must not commit
    const wrote = await b.one(
      `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity s USING (pid)
        WHERE l.relation = 'public.events'::regclass AND l.mode = 'RowExclusiveLock' AND l.granted AND s.application_name LIKE $1`,
      [`bucardo:s1:write:${cutPid}%`],
    );
    assert.equal(wrote.n, 1, 'the cut-off runner has written public.events on b');
    other = spawnCli(['run', '-f', file]);
    const otherPid = other.child.pid!;
    await waitFor(async () => {
      const r = await runnersOf(file);
      return r.holding?.pid === cutPid && r.connected.some((c) => c.pid === otherPid);
    }, 'status: the first runner holds the sync, the second is connected');

    proxy.cut();
    // its session on b ends with the socket (client_connection_check_interval while it waits),
    // and with it the fence and whatever the run wrote there
    await waitFor(
      async () =>
        (
          await b.one(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE $1`, [
            `bucardo:s1:%:${cutPid}%`,
          ])
        ).n === 0,
      'the cut-off runner gone from b',
    );
    await app.query('COMMIT');
    await waitFor(async () => (await countOn(b)) === n, `all ${n} rows on b`, 60_000);
    assert.equal(cut.child.exitCode, null, 'the cut-off runner is still running: what it wrote went with its session, not its process');
    await assertEachOnce(b, n);
    const writers = await b.query<{ app: string }>(`SELECT DISTINCT app FROM public.applied WHERE id > 1`);
    assert.deepEqual(
      writers.rows.map((w) => parseRunnerAppName(w.app)?.pid),
      [otherPid],
      'every row the cut-off run had written on b written again, and committed, by the second runner',
    );
    const done = await a.query<{ runner: string }>(
      `SELECT runner FROM bucardo_main.run WHERE sync = 's1' AND error IS NULL AND rows > 0 ORDER BY started OFFSET 1`,
    );
    assert.deepEqual(
      done.rows.map((r) => Number(r.runner.slice(r.runner.lastIndexOf(':') + 1))),
      [otherPid],
      'after the first run, only the second runner committed a run',
    );
  } finally {
    proxy.cut();
    await app.end().catch(() => {});
    await Promise.all([cut?.stop(), other?.stop()]);
  }
});

test('two runners on one file with six syncs share the work: both take runs, and every row arrives once', async () => {
  const names = [1, 2, 3, 4, 5, 6].map((i) => `t${i}`);
  const [a, b] = await env.fresh('sharing', names.map((t) => `CREATE TABLE public.${t} (id bigint PRIMARY KEY, v text NOT NULL);`).join('\n'));
  const file = writeTopology({
    version: 1,
    databases: { [a.name]: { url: a.url }, [b.name]: { url: b.url } },
    relgroups: Object.fromEntries(names.map((t) => [`g_${t}`, { tables: [`public.${t}`] }])),
    syncs: Object.fromEntries(names.map((t) => [`s_${t}`, { relgroup: `g_${t}`, sources: [a.name], targets: [b.name] }])),
  });
  await applyOk(file);
  const runners = [spawnCli(['run', '-f', file]), spawnCli(['run', '-f', file])];
  const pids = runners.map((r) => r.child.pid!);
  const writer = new pg.Client(a.cluster.clientConfig(a.dbname));
  await writer.connect();
  let n = 0;
  const committedRunsBy = async () =>
    new Set(
      (await a.query<{ runner: string }>(`SELECT DISTINCT runner FROM bucardo_main.run WHERE error IS NULL AND rows > 0`)).rows.map((r) =>
        Number(r.runner.slice(r.runner.lastIndexOf(':') + 1)),
      ),
    );
  try {
    // a row into every table at a time, until each runner has committed runs that moved rows
    await waitFor(
      async () => {
        n++;
        await writer.query('BEGIN');
        for (const t of names) await writer.query(`INSERT INTO public.${t} VALUES ($1, 'x')`, [n]);
        await writer.query('COMMIT');
        const by = await committedRunsBy();
        return pids.every((p) => by.has(p));
      },
      'both runners committing runs that moved rows',
      60_000,
      50,
    );
    for (const t of names)
      await waitFor(async () => Number((await b.one(`SELECT count(*)::int AS n FROM public.${t}`)).n) === n, `all ${n} rows of ${t} on b`, 60_000);
    for (const t of names) {
      const got = await b.one(`SELECT count(DISTINCT id)::int AS d, min(id)::int AS lo, max(id)::int AS hi FROM public.${t}`);
      assert.deepEqual(got, { d: n, lo: 1, hi: n }, `every id of ${t} on b`);
    }
  } finally {
    await writer.end();
    await Promise.all(runners.map((r) => r.stop()));
  }
});
