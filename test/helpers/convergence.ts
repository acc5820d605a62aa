/**
 * A randomized convergence check in the manner of Jepsen: three sources and a target,
 * writers on every source issuing random inserts, updates, key changes, deletes,
 * TRUNCATEs and two-phase commits, some transactions held open across runs, while a
 * runner is SIGKILLed and restarted at random moments (and now and then a second runner
 * races it). Every committed write is recorded with the time its change was captured
 * (read back from the change log inside the writing transaction) and the order in which
 * it committed. At the end, after writes stop and the runner has caught up:
 *
 * - every database holds the same rows;
 * - each key holds the value of its newest committed write (the change times that
 *   `conflict: latest` compares; a tie goes to the source listed first), which for a key
 *   written on one source only means its last write: nothing is lost.
 *
 * One exception is allowed and counted (docs/protocol.md, "What latest means"): a run
 * applies a delete of a key that a receiving source does not have while a transaction
 * there, still open, inserts it; no lock can reveal that insert to the run, so it
 * survives because it committed last. It is accepted only in that shape: the surviving
 * write committed after the newest one, and the newest one is a deletion.
 *
 * Everything random comes from one seed (printed on failure); the interleavings themselves
 * also depend on timing, so a seed narrows a failure down rather than replaying it exactly.
 */
import pg from 'pg';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestDb } from './env.js';
import { writeTopology } from './env.js';
import { runCli, spawnCli } from './cli.js';
import { CHANGE_INDEX_MIN_TABLES } from '../../engine/sql/capture.js';

export const DDL = `
CREATE TABLE public.kv (k integer PRIMARY KEY, v text NOT NULL);
CREATE TABLE public.pair (a integer, b text, v text, PRIMARY KEY (a, b));
`;
/**
 * The audit trail of a schedule: every row change and TRUNCATE of kv and pair on every
 * database, the runner's included (ENABLE ALWAYS fires under session_replication_role =
 * replica), with the backend, the role, the origin and the transaction; written out
 * beside the history when a schedule fails, in commit order (track_commit_timestamp), so
 * that a divergence can be followed write by write.
 */
const AUDIT_DDL = `
CREATE TABLE public.conv_audit (id bigserial PRIMARY KEY, xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  at timestamptz NOT NULL DEFAULT clock_timestamp(), pid integer NOT NULL DEFAULT pg_backend_pid(),
  role text NOT NULL DEFAULT current_setting('session_replication_role'), origin text DEFAULT current_setting('bucardo.origin', true),
  app text NOT NULL DEFAULT current_setting('application_name'), tbl text NOT NULL, op text NOT NULL, before text, after text);
CREATE FUNCTION public.conv_audit() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    INSERT INTO public.conv_audit (tbl, op) VALUES (TG_TABLE_NAME, TG_OP);
  ELSE
    INSERT INTO public.conv_audit (tbl, op, before, after)
    VALUES (TG_TABLE_NAME, TG_OP, CASE WHEN TG_OP <> 'INSERT' THEN row_to_json(OLD)::text END, CASE WHEN TG_OP <> 'DELETE' THEN row_to_json(NEW)::text END);
  END IF;
  RETURN NULL;
END $f$;
CREATE TRIGGER conv_audit AFTER INSERT OR UPDATE OR DELETE ON public.kv FOR EACH ROW EXECUTE FUNCTION public.conv_audit();
CREATE TRIGGER conv_audit_t AFTER TRUNCATE ON public.kv FOR EACH STATEMENT EXECUTE FUNCTION public.conv_audit();
CREATE TRIGGER conv_audit AFTER INSERT OR UPDATE OR DELETE ON public.pair FOR EACH ROW EXECUTE FUNCTION public.conv_audit();
CREATE TRIGGER conv_audit_t AFTER TRUNCATE ON public.pair FOR EACH STATEMENT EXECUTE FUNCTION public.conv_audit();
ALTER TABLE public.kv ENABLE ALWAYS TRIGGER conv_audit, ENABLE ALWAYS TRIGGER conv_audit_t;
ALTER TABLE public.pair ENABLE ALWAYS TRIGGER conv_audit, ENABLE ALWAYS TRIGGER conv_audit_t;
`;

/** One database's audit trail in commit order, a line per change. */
async function auditTrail(d: TestDb): Promise<string> {
  const r = await d.query(
    `SELECT pg_xact_commit_timestamp(xid::text::xid) AS committed, xid::text, at, pid, role, coalesce(origin, '') AS origin, app, tbl, op, coalesce(before, '') AS before, coalesce(after, '') AS after
       FROM public.conv_audit ORDER BY 1, id`,
  );
  return r.rows
    .map((x) =>
      [x.committed?.toISOString?.() ?? x.committed, x.xid, x.at?.toISOString?.() ?? x.at, x.pid, x.role, x.origin, x.app, x.tbl, x.op, x.before, x.after].join(
        '\t',
      ),
    )
    .join('\n');
}

const KV_KEYS = 40;
const PAIR_A = 6;
const PAIR_B = ['x', 'y', 'z'];

/** mulberry32: small, fast, good enough for schedules. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One committed write of one key: its value afterwards (null: absent), when it was captured, and when it committed. */
interface Write {
  src: number;
  ts: bigint;
  value: string | null;
  commit: number;
}

export interface ScheduleOptions {
  seed: number;
  /** Seconds of writes. */
  seconds: number;
  /** Sources (3) then the target. */
  dbs: TestDb[];
}

export interface ScheduleReport {
  seed: number;
  transactions: number;
  committed: number;
  prepared: number;
  truncates: number;
  kills: number;
  /** Runs that wrote, during the load and after. */
  runs: number;
  conflicts: number;
  deferred: number;
  /** Keys that ended on the allowed exception (see the header). */
  exceptions: number;
  keysChecked: number;
  /** The sync has CHANGE_INDEX_MIN_TABLES tables (idle ones added): runs find kv and pair by the change index. */
  changeIndex: boolean;
  problems: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runSchedule(opts: ScheduleOptions): Promise<ScheduleReport> {
  const { seed, dbs } = opts;
  const rand = rng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];
  const between = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const sources = dbs.slice(0, 3);
  const databases: Record<string, unknown> = {};
  for (const d of dbs) databases[d.name] = { url: d.url };
  await Promise.all(dbs.map((d) => d.query(AUDIT_DDL)));
  // every other schedule in a sync big enough for the change index (docs/protocol.md, step
  // 3): idle tables besides kv and pair, so both ways of finding pending tables are tried
  const changeIndex = seed % 2 === 1;
  const fillers = changeIndex ? Array.from({ length: CHANGE_INDEX_MIN_TABLES - 2 }, (_, i) => `conv_idle_${i + 1}`) : [];
  if (fillers.length) {
    const create = `DO $$ BEGIN FOR i IN 1..${fillers.length} LOOP EXECUTE format('CREATE TABLE public.%I (id integer PRIMARY KEY)', 'conv_idle_' || i); END LOOP; END $$`;
    await Promise.all(dbs.map((d) => d.query(create)));
  }
  const file = writeTopology({
    version: 1,
    databases,
    relgroups: { g: { tables: ['public.kv', 'public.pair', ...fillers.map((t) => `public.${t}`)] } },
    syncs: { mm: { relgroup: 'g', sources: sources.map((d) => d.name), targets: [dbs[3].name], conflict: 'latest', checktime: '1s' } },
  });
  const applied = await runCli(['apply', '-f', file, '--auto-approve']);
  if (applied.code !== 0) throw new Error(`apply failed: ${applied.out}`);
  // most schedules start from a first run (the onetimecopy) done before the load; the others
  // copy into sources that are being written
  if (rand() < 0.8) {
    const first = await runCli(['run', '-f', file, '--once']);
    if (first.code !== 0) throw new Error(`first run failed: ${first.out}`);
  }
  const ids = new Map<string, string>();
  for (const t of ['kv', 'pair']) {
    const r = await sources[0].query(`SELECT object_name FROM bucardo_main.installed WHERE object_type = 'delta_table' AND table_name = $1`, [t]);
    ids.set(t, String(r.rows[0].object_name).split('.')[1]);
  }

  const report: ScheduleReport = {
    seed,
    changeIndex,
    transactions: 0,
    committed: 0,
    prepared: 0,
    truncates: 0,
    kills: 0,
    runs: 0,
    conflicts: 0,
    deferred: 0,
    exceptions: 0,
    keysChecked: 0,
    problems: [],
  };
  const writes = new Map<string, Write[]>(); // "kv:k" / "pair:a:b" -> writes
  const truncs: { table: string; src: number; ts: bigint; commit: number }[] = [];
  let commitSeq = 0;
  let stop = false;

  // ---- the runner, killed and restarted at random moments ----
  const outputs: string[] = [];
  const runnerLoop = (async () => {
    while (!stop) {
      const r = spawnCli(['run', '-f', file, '--log-format', 'json']);
      const racer = rand() < 0.2 ? spawnCli(['run', '-f', file, '--log-format', 'json']) : null;
      const life = between(500, 4000);
      const end = Date.now() + life;
      while (!stop && Date.now() < end) await sleep(50);
      r.kill('SIGKILL');
      racer?.kill('SIGKILL');
      await r.exited;
      await racer?.exited;
      report.kills++;
      outputs.push(r.output().stdout + r.output().stderr);
      if (racer) outputs.push(racer.output().stdout + racer.output().stderr);
      await sleep(between(0, 300));
    }
  })();

  // ---- writers ----
  const writer = async (src: number, wid: number) => {
    const db = sources[src];
    const c = new pg.Client({ ...db.cluster.clientConfig(db.dbname), options: '-c TimeZone=UTC' });
    await c.connect();
    c.on('error', () => {});
    let n = 0;
    try {
      while (!stop) {
        report.transactions++;
        const mode = rand();
        const kind = mode < 0.06 ? '2pc' : mode < 0.12 ? 'hold' : mode < 0.17 ? 'rollback' : 'plain';
        const val = () => `${db.name}:${wid}:${++n}`;
        let ok = true;
        await c.query('BEGIN');
        const ops = between(1, 3);
        for (let i = 0; i < ops && ok; i++) {
          const op = rand();
          const k = between(1, KV_KEYS);
          const a = between(1, PAIR_A);
          const b = pick(PAIR_B);
          try {
            if (op < 0.3) await c.query('INSERT INTO public.kv VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v', [k, val()]);
            else if (op < 0.45) await c.query('UPDATE public.kv SET v = $2 WHERE k = $1', [k, val()]);
            else if (op < 0.55) await c.query('DELETE FROM public.kv WHERE k = $1', [k]);
            else if (op < 0.62) await c.query('UPDATE public.kv SET k = $2 WHERE k = $1', [k, between(1, KV_KEYS)]);
            else if (op < 0.67) await c.query('UPDATE public.kv SET v = $1 WHERE k BETWEEN $2 AND $3', [val(), k, k + between(0, 5)]);
            else if (op < 0.82) await c.query('INSERT INTO public.pair VALUES ($1, $2, $3) ON CONFLICT (a, b) DO UPDATE SET v = EXCLUDED.v', [a, b, val()]);
            else if (op < 0.9) await c.query('DELETE FROM public.pair WHERE a = $1 AND b = $2', [a, b]);
            else if (op < 0.99) await c.query('UPDATE public.pair SET b = $3 WHERE a = $1 AND b = $2', [a, b, pick(PAIR_B)]);
            else if (op < 0.995) await c.query('TRUNCATE public.kv');
            else await c.query('TRUNCATE public.pair');
          } catch {
            ok = false; // a unique violation of a key change, a deadlock, ...: the transaction is lost
          }
        }
        if (!ok || kind === 'rollback') {
          await c.query('ROLLBACK').catch(() => {});
          continue;
        }
        let effects: { key: string; ts: bigint; value: string | null }[];
        let truncated: { table: string; ts: bigint }[];
        try {
          [effects, truncated] = await readEffects(c, ids);
        } catch {
          await c.query('ROLLBACK').catch(() => {});
          continue;
        }
        try {
          if (kind === 'hold') await sleep(between(200, 2000));
          if (kind === '2pc') {
            const gid = `conv_${seed}_${src}_${wid}_${n}`;
            await c.query(`PREPARE TRANSACTION '${gid}'`);
            report.prepared++;
            await sleep(between(20, 1500));
            await c.query(`COMMIT PREPARED '${gid}'`);
          } else {
            await c.query('COMMIT');
          }
        } catch {
          await c.query('ROLLBACK').catch(() => {});
          continue;
        }
        const commit = ++commitSeq;
        report.committed++;
        for (const e of effects) {
          const list = writes.get(e.key) ?? [];
          list.push({ src, ts: e.ts, value: e.value, commit });
          writes.set(e.key, list);
        }
        for (const t of truncated) {
          truncs.push({ table: t.table, src, ts: t.ts, commit });
          report.truncates++;
        }
        await sleep(between(0, 5));
      }
    } finally {
      await c.end().catch(() => {});
    }
  };
  const writers = sources.flatMap((_, src) => [writer(src, 0), writer(src, 1)]);
  await sleep(opts.seconds * 1000);
  stop = true;
  await Promise.all(writers);
  await runnerLoop;

  // ---- catch up, then check ----
  for (let i = 0; i < 2; i++) {
    const r = await runCli(['run', '-f', file, '--once', '--log-format', 'json'], { timeout: 120_000 });
    outputs.push(r.out);
    if (r.code !== 0) report.problems.push(`final run --once exited ${r.code}: ${r.out.slice(-2000)}`);
  }
  for (const out of outputs) {
    for (const line of out.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const e = JSON.parse(line);
        if (e.event === 'run') {
          report.runs++;
          report.conflicts += e.conflicts ?? 0;
          for (const n of Object.values((e.deferred ?? {}) as Record<string, number>)) report.deferred += n;
        }
      } catch {
        /* a line cut by SIGKILL */
      }
    }
  }
  await check(report, dbs, writes, truncs);
  if (report.problems.length || process.env.BUCARDO_CONVERGENCE_DUMP) {
    const dump = path.join(os.tmpdir(), `bucardo-convergence-${seed}.log`);
    const history = [...writes].map(([k, ws]) => `${k}: ${ws.map((w) => `${w.value ?? 'absent'}@${w.ts}/src${w.src}/#${w.commit}`).join(' ')}`).join('\n');
    const tr = truncs.map((t) => `TRUNCATE ${t.table}@${t.ts}/src${t.src}/#${t.commit}`).join('\n');
    fs.writeFileSync(dump, `${history}\n${tr}\n\n${outputs.join('\n=====\n')}`);
    const trails = await Promise.all(dbs.map(async (d) => `== ${d.name}\n${await auditTrail(d)}`));
    fs.writeFileSync(`${dump}.audit`, `committed\txid\tat\tpid\trole\torigin\tapp\ttable\top\tbefore\tafter\n${trails.join('\n')}\n`);
    report.problems.push(`every write and the output of every runner: ${dump}; every change on every database, in commit order: ${dump}.audit`);
  }
  return report;
}

/** In the writing transaction: the keys it changed with their change times and values now, and its TRUNCATEs. */
async function readEffects(
  c: pg.Client,
  ids: Map<string, string>,
): Promise<[{ key: string; ts: bigint; value: string | null }[], { table: string; ts: bigint }[]]> {
  const us = (col: string) => `(extract(epoch FROM ${col}) * 1000000)::bigint::text`;
  const kv = await c.query<{ k: number; ts: string; v: string | null }>(
    `SELECT d.k, max(${us('d._bucardo_ts')}) AS ts, (SELECT v FROM public.kv t WHERE t.k = d.k) AS v
       FROM bucardo_main.${ids.get('kv')} d WHERE d._bucardo_txid = pg_current_xact_id_if_assigned() GROUP BY d.k`,
  );
  const pair = await c.query<{ a: number; b: string; ts: string; v: string | null; present: boolean }>(
    `SELECT d.a, d.b, max(${us('d._bucardo_ts')}) AS ts, (SELECT v FROM public.pair t WHERE t.a = d.a AND t.b = d.b) AS v,
            EXISTS (SELECT 1 FROM public.pair t WHERE t.a = d.a AND t.b = d.b) AS present
       FROM bucardo_main.${ids.get('pair')} d WHERE d._bucardo_txid = pg_current_xact_id_if_assigned() GROUP BY d.a, d.b`,
  );
  const tr = await c.query<{ table_id: string; ts: string }>(
    `SELECT table_id, ${us('_bucardo_ts')} AS ts FROM bucardo_main.truncate_log WHERE _bucardo_txid = pg_current_xact_id_if_assigned()`,
  );
  const byId = new Map([...ids].map(([t, delta]) => [delta.replace(/^delta_/, ''), t]));
  return [
    [
      ...kv.rows.map((r) => ({ key: `kv:${r.k}`, ts: BigInt(r.ts), value: r.v })),
      ...pair.rows.map((r) => ({ key: `pair:${r.a}:${r.b}`, ts: BigInt(r.ts), value: r.present ? `[${r.v}]` : null })),
    ],
    tr.rows.map((r) => ({ table: byId.get(r.table_id)!, ts: BigInt(r.ts) })),
  ];
}

async function finalValues(d: TestDb): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const r of (await d.query('SELECT k, v FROM public.kv')).rows) out.set(`kv:${r.k}`, r.v);
  for (const r of (await d.query('SELECT a, b, v FROM public.pair')).rows) out.set(`pair:${r.a}:${r.b}`, `[${r.v}]`);
  return out;
}

async function check(
  report: ScheduleReport,
  dbs: TestDb[],
  writes: Map<string, Write[]>,
  truncs: { table: string; src: number; ts: bigint; commit: number }[],
): Promise<void> {
  const finals = await Promise.all(dbs.map(finalValues));
  const ref = finals[0];
  for (let i = 1; i < dbs.length; i++) {
    const diff = [...new Set([...ref.keys(), ...finals[i].keys()])].filter((k) => ref.get(k) !== finals[i].get(k));
    if (diff.length)
      report.problems.push(
        `${dbs[i].name} differs from ${dbs[0].name} in ${diff.length} keys, e.g. ${diff
          .slice(0, 5)
          .map((k) => `${k}: ${ref.get(k) ?? 'absent'} vs ${finals[i].get(k) ?? 'absent'}`)
          .join('; ')}`,
      );
  }
  const keys = new Set<string>([...writes.keys(), ...ref.keys()]);
  for (let k = 1; k <= KV_KEYS; k++) keys.add(`kv:${k}`);
  for (let a = 1; a <= PAIR_A; a++) for (const b of PAIR_B) keys.add(`pair:${a}:${b}`);
  for (const key of keys) {
    const table = key.split(':')[0];
    const all: Write[] = [
      ...(writes.get(key) ?? []),
      ...truncs.filter((t) => t.table === table).map((t) => ({ src: t.src, ts: t.ts, value: null, commit: t.commit })),
    ];
    if (!all.length) continue;
    report.keysChecked++;
    const newest = all.reduce((m, w) => (w.ts > m.ts || (w.ts === m.ts && w.src < m.src) ? w : m));
    const got = ref.get(key) ?? null;
    if (got === newest.value) continue;
    const later = all.find((w) => w.value === got && w.commit > newest.commit);
    if (newest.value === null && later) {
      report.exceptions++;
      continue;
    }
    const show = (w: Write) => `${w.value ?? 'absent'} (source ${w.src}, change ${w.ts}, commit #${w.commit})`;
    report.problems.push(
      `${key}: holds ${got ?? 'absent'}, but its newest committed write is ${show(newest)}; writes: ${all
        .sort((x, y) => (x.ts < y.ts ? -1 : 1))
        .map(show)
        .join(', ')}`,
    );
  }
}
