/**
 * `node dist/test/bench/capture.js [SCALE] [SECONDS] [ROUNDS]`: the capture triggers' own
 * cost on the source, variant against variant, on one embedded cluster with the
 * benchmark's settings (durability on). Per variant: pgbench tpcb-like (4 clients,
 * -M simple, as M3) and one-row UPDATE transactions (4 clients), both with
 * synchronous_commit on and off (off: CPU only, the commit flush hidden), and one
 * 100k-row UPDATE of pgbench_accounts (median of 3). Rounds interleave the variants so
 * drift on the shared machine spreads over all of them; medians are printed.
 */
import pg from 'pg';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startClusters, type ClusterGroup } from '../../cli/demo/clusters.js';
import { captureDef } from '../../engine/sql/capture.js';
import { TABLES_DDL, dataSql, KEYS_DDL } from './schema.js';
import { CLUSTER_SETTINGS } from './config.js';

const TOPO = 'cap';
const SCHEMA = `bucardo_${TOPO}`;
const TABLES: { name: string; key: string; type: string }[] = [
  { name: 'pgbench_accounts', key: 'aid', type: 'integer' },
  { name: 'pgbench_branches', key: 'bid', type: 'integer' },
  { name: 'pgbench_tellers', key: 'tid', type: 'integer' },
  { name: 'pgbench_history', key: 'hid', type: 'bigint' },
];

interface Variant {
  name: string;
  /** SQL installing capture on one table (the delta table exists already). */
  install(t: (typeof TABLES)[number]): string[];
}

const delta = (t: { name: string }) => `${SCHEMA}.delta_${t.name}`;
const notify = `PERFORM pg_notify('bucardo_${TOPO}_kick', 'x');`;

function plfn(name: string, body: string): string {
  return `CREATE OR REPLACE FUNCTION ${SCHEMA}.${name}() RETURNS trigger LANGUAGE plpgsql AS $f$\n${body}\n$f$`;
}
function stmtTriggers(t: { name: string }, fn: string, events = ['insert', 'update', 'delete', 'truncate']): string[] {
  return events.map((e) => {
    const ref =
      e === 'insert'
        ? ' REFERENCING NEW TABLE AS bucardo_new'
        : e === 'update'
          ? ' REFERENCING OLD TABLE AS bucardo_old NEW TABLE AS bucardo_new'
          : e === 'delete'
            ? ' REFERENCING OLD TABLE AS bucardo_old'
            : '';
    return `CREATE TRIGGER cap_${t.name}_${e[0]} AFTER ${e.toUpperCase()} ON ${t.name}${ref} FOR EACH STATEMENT EXECUTE FUNCTION ${SCHEMA}.${fn}()`;
  });
}

const variants: Variant[] = [
  {
    name: 'stmt, OLD+NEW TABLE, UNION (before 01598db; partitioned tables still)',
    install: (t) => {
      const def = captureDef(TOPO, { schema: 'public', name: t.name }, [{ name: t.key, type: t.type }], {
        autokick: true,
        makedelta: false,
        partitioned: true,
      });
      const body = def.function.body
        .replaceAll(`"${SCHEMA}"."${def.deltaTable.name}"`, delta(t))
        .replaceAll(`"${SCHEMA}"."truncate_log"`, `${SCHEMA}.truncate_log`);
      return [plfn(`fn_${t.name}`, body), ...stmtTriggers(t, `fn_${t.name}`)];
    },
  },
  {
    name: 'stmt, no UNION',
    install: (t) => {
      const k = t.key;
      const body = `DECLARE n bigint;
BEGIN
  IF TG_OP = 'INSERT' THEN INSERT INTO ${delta(t)} (${k}) SELECT ${k} FROM bucardo_new;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO ${delta(t)} (${k}) SELECT ${k} FROM bucardo_new;
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO ${delta(t)} (${k}) SELECT o.${k} FROM bucardo_old o WHERE NOT EXISTS (SELECT FROM bucardo_new w WHERE w.${k} = o.${k});
  ELSIF TG_OP = 'DELETE' THEN INSERT INTO ${delta(t)} (${k}) SELECT ${k} FROM bucardo_old;
  ELSE INSERT INTO ${SCHEMA}.truncate_log (table_id) VALUES ('x');
  END IF;
  ${notify}
  RETURN NULL;
END`;
      return [plfn(`fn_${t.name}`, body), ...stmtTriggers(t, `fn_${t.name}`)];
    },
  },
  { name: 'row (NEW/OLD keys) + stmt truncate', install: (t) => rowCapture(t, notify) },
  { name: 'row, no notify', install: (t) => rowCapture(t, '') },
  {
    name: 'stmt, no notify',
    install: (t) => {
      const k = t.key;
      const body = `BEGIN
  IF TG_OP = 'INSERT' THEN INSERT INTO ${delta(t)} (${k}) SELECT ${k} FROM bucardo_new;
  ELSIF TG_OP = 'UPDATE' THEN INSERT INTO ${delta(t)} (${k}) SELECT ${k} FROM bucardo_new UNION SELECT ${k} FROM bucardo_old;
  ELSIF TG_OP = 'DELETE' THEN INSERT INTO ${delta(t)} (${k}) SELECT ${k} FROM bucardo_old;
  ELSE INSERT INTO ${SCHEMA}.truncate_log (table_id) VALUES ('x');
  END IF;
  RETURN NULL;
END`;
      return [plfn(`fn_${t.name}`, body), ...stmtTriggers(t, `fn_${t.name}`)];
    },
  },
  {
    name: 'stmt, gated notify (runner streaming)',
    install: (t) => {
      const def = captureDef(TOPO, { schema: 'public', name: t.name }, [{ name: t.key, type: t.type }], { autokick: true, makedelta: false });
      const body = def.function.body
        .replaceAll(`"${SCHEMA}"."${def.deltaTable.name}"`, delta(t))
        .replaceAll(`"${SCHEMA}"."truncate_log"`, `${SCHEMA}.truncate_log`)
        .replace('  IF n > 0 THEN', '  IF n > 0 AND NOT pg_try_advisory_xact_lock_shared(1, 2) THEN');
      return [plfn(`fn_${t.name}`, body), ...stmtTriggers(t, `fn_${t.name}`)];
    },
  },
  {
    name: 'stmt NEW only + row trigger on key change (current)',
    install: (t) => {
      const def = captureDef(TOPO, { schema: 'public', name: t.name }, [{ name: t.key, type: t.type }], { autokick: true, makedelta: false });
      const body = def.function.body
        .replaceAll(`"${SCHEMA}"."${def.deltaTable.name}"`, delta(t))
        .replaceAll(`"${SCHEMA}"."truncate_log"`, `${SCHEMA}.truncate_log`)
        .replace(/ UNION SELECT .* FROM bucardo_old;/, ';');
      const k = t.key;
      return [
        plfn(`fn_${t.name}`, body),
        plfn(`fnk_${t.name}`, `BEGIN INSERT INTO ${delta(t)} (${k}) VALUES (OLD.${k}); RETURN NULL; END`),
        ...stmtTriggers(t, `fn_${t.name}`, ['insert', 'delete', 'truncate']),
        `CREATE TRIGGER cap_${t.name}_u AFTER UPDATE ON ${t.name} REFERENCING NEW TABLE AS bucardo_new FOR EACH STATEMENT EXECUTE FUNCTION ${SCHEMA}.fn_${t.name}()`,
        `CREATE TRIGGER cap_${t.name}_k AFTER UPDATE OF ${k} ON ${t.name} FOR EACH ROW WHEN (OLD.${k} IS DISTINCT FROM NEW.${k}) EXECUTE FUNCTION ${SCHEMA}.fnk_${t.name}()`,
      ];
    },
  },
  { name: 'none', install: () => [] },
];

function pgbench(url: string, args: string[], syncOff: boolean): number {
  const bin = process.env.PGBENCH ?? '/usr/lib/postgresql/15/bin/pgbench';
  const out = execFileSync(bin, [...args, url], {
    encoding: 'utf8',
    env: { ...process.env, PGOPTIONS: syncOff ? '-c synchronous_commit=off' : '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const m = /tps = ([\d.]+) \(without initial connection time\)/.exec(out);
  if (!m) throw new Error(out);
  return Number(m[1]);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const scale = Number(process.argv[2] ?? 10);
  const secs = Number(process.argv[3] ?? 8);
  const rounds = Number(process.argv[4] ?? 3);
  const only = process.env.VARIANTS ? new Set(process.env.VARIANTS.split(',').map(Number)) : null;
  const vs = variants.filter((_, i) => !only || only.has(i));
  let group: ClusterGroup | null = null;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capbench-'));
  const oneRow = path.join(dir, 'onerow.sql');
  fs.writeFileSync(oneRow, `\\set aid random(1, ${scale * 100_000})\nUPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;\n`);
  try {
    group = await startClusters(['a'], { settings: CLUSTER_SETTINGS });
    const A = group.byName.a;
    await A.createDatabase('bench');
    const url = A.url('bench');
    const c = new pg.Client(A.clientConfig('bench'));
    c.on('error', () => {});
    await c.connect();
    await c.query(TABLES_DDL + dataSql(scale) + KEYS_DDL);
    await c.query(`CREATE SCHEMA ${SCHEMA}`);
    await c.query(
      `CREATE TABLE ${SCHEMA}.truncate_log (table_id text NOT NULL, _bucardo_txid xid8 NOT NULL DEFAULT pg_current_xact_id(), _bucardo_ts timestamptz NOT NULL DEFAULT now(), _bucardo_origin text DEFAULT current_setting('bucardo.origin', true))`,
    );
    for (const t of TABLES) {
      await c.query(
        `CREATE TABLE ${delta(t)} (${t.key} ${t.type} NOT NULL, _bucardo_txid xid8 NOT NULL DEFAULT pg_current_xact_id(), _bucardo_ts timestamptz NOT NULL DEFAULT now(), _bucardo_origin text DEFAULT current_setting('bucardo.origin', true))`,
      );
    }
    await c.query('VACUUM ANALYZE');
    const res: Record<string, Record<string, number[]>> = {};
    const reset = async () => {
      await c.query(`TRUNCATE ${TABLES.map((t) => delta(t)).join(', ')}, ${SCHEMA}.truncate_log, pgbench_history`);
      await c.query('VACUUM pgbench_accounts, pgbench_tellers, pgbench_branches');
      await c.query('CHECKPOINT');
    };
    for (let r = 0; r < rounds; r++) {
      for (const v of vs) {
        for (const t of TABLES) {
          for (const e of ['i', 'u', 'd', 't', 'k']) await c.query(`DROP TRIGGER IF EXISTS cap_${t.name}_${e} ON ${t.name}`);
          for (const s of v.install(t)) await c.query(s);
        }
        res[v.name] ??= {};
        const rec = res[v.name];
        const put = (k: string, x: number) => {
          rec[k] ??= [];
          rec[k].push(x);
        };
        for (const syncOff of [false, true]) {
          const sc = syncOff ? 'async' : 'sync';
          await reset();
          put(`tpcb ${sc}`, pgbench(url, ['-n', '-M', 'simple', '-b', 'tpcb-like', '-c', '4', '-j', '2', '-T', String(secs)], syncOff));
          await reset();
          put(`1row ${sc}`, pgbench(url, ['-n', '-M', 'simple', '-f', oneRow, '-c', '4', '-j', '2', '-T', String(secs)], syncOff));
        }
        const bulk: number[] = [];
        for (let i = 0; i < 3; i++) {
          await reset();
          const t0 = performance.now();
          await c.query('UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= 100000');
          bulk.push(performance.now() - t0);
        }
        put('100k ms', median(bulk));
        console.error(`round ${r} ${v.name}: ${JSON.stringify(Object.fromEntries(Object.entries(rec).map(([k, x]) => [k, x[x.length - 1]])))}`);
      }
    }
    const keys = Object.keys(res[vs[0].name]);
    console.log(`\nscale ${scale}, ${secs} s per pgbench, ${rounds} rounds, medians\n`);
    console.log(`| variant | ${keys.join(' | ')} |`);
    console.log(`|---|${keys.map(() => '---').join('|')}|`);
    for (const v of vs) console.log(`| ${v.name} | ${keys.map((k) => median(res[v.name][k]).toFixed(k.endsWith('ms') ? 0 : 0)).join(' | ')} |`);
    await c.end();
  } finally {
    await group?.stopAll();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

/** Row-level capture (NEW/OLD keys), with or without the NOTIFY statement. */
function rowCapture(t: Parameters<Variant['install']>[0], notifyStatement: string): string[] {
  const k = t.key;
  const body = `BEGIN
  IF TG_OP = 'UPDATE' THEN
    INSERT INTO ${delta(t)} (${k}) VALUES (NEW.${k});
    IF OLD.${k} IS DISTINCT FROM NEW.${k} THEN INSERT INTO ${delta(t)} (${k}) VALUES (OLD.${k}); END IF;
  ELSIF TG_OP = 'INSERT' THEN INSERT INTO ${delta(t)} (${k}) VALUES (NEW.${k});
  ELSIF TG_OP = 'DELETE' THEN INSERT INTO ${delta(t)} (${k}) VALUES (OLD.${k});
  ELSE INSERT INTO ${SCHEMA}.truncate_log (table_id) VALUES ('x');
  END IF;
  ${notifyStatement}
  RETURN NULL;
END`;
  return [
    plfn(`fn_${t.name}`, body),
    ...['insert', 'update', 'delete'].map(
      (e) => `CREATE TRIGGER cap_${t.name}_${e[0]} AFTER ${e.toUpperCase()} ON ${t.name} FOR EACH ROW EXECUTE FUNCTION ${SCHEMA}.fn_${t.name}()`,
    ),
    `CREATE TRIGGER cap_${t.name}_t AFTER TRUNCATE ON ${t.name} FOR EACH STATEMENT EXECUTE FUNCTION ${SCHEMA}.fn_${t.name}()`,
  ];
}
