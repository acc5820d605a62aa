import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Topology, SyncSpec } from '../../engine/topology/types.js';
import { makeSyncContext, globMatch, syncLockKey } from '../../engine/runner/context.js';
import { makeRunScope } from '../../engine/runner/scope.js';
import { seqKey } from '../../engine/runner/sql/prepare.js';
import { formatLog } from '../../engine/runner/log.js';
import { SyncConnections, runnerAppName, parseRunnerAppName } from '../../engine/runner/connections.js';
import { isRetryable, backoffMs } from '../../engine/runner/retry.js';
import { parseKickPayload, kickPayload } from '../../engine/runner/kick.js';
import { Metrics } from '../../engine/runner/metrics.js';
import { BucardoError } from '../../engine/errors.js';
import type { DatabaseState } from '../../engine/runner/types.js';
import { SQLSTATE } from '../../engine/sqlstate.js';

const pos = { line: 1, col: 1 };
function topo(sync: Partial<SyncSpec> = {}): Topology {
  const db = (name: string) => [name, { name, connection: { url: `postgres://u@h/${name}` }, makedelta: false, pos }] as const;
  const s: SyncSpec = {
    name: 's1',
    kind: 'delta',
    relgroup: 'g',
    sources: ['a', 'b'],
    targets: ['c'],
    conflict: { kind: 'latest' },
    onetimecopy: 'if_empty',
    autokick: true,
    checktimeMs: null,
    enabled: true,
    deletemethod: 'truncate',
    strict: true,
    isolation: 'repeatable read',
    lockTables: false,
    analyzeAfterCopy: true,
    vacuumAfterCopy: false,
    rebuildIndex: false,
    hooks: {},
    pos,
    ...sync,
  };
  return {
    file: 'bucardo.yaml',
    name: 'main',
    runHistoryMs: 14 * 24 * 3600 * 1000,
    databases: new Map([db('a'), db('b'), db('c')]),
    relgroups: new Map([
      [
        'g',
        {
          name: 'g',
          pos,
          exclude: [],
          tables: [
            { kind: 'name', table: { schema: 'public', name: 'items' }, pos },
            { kind: 'match', pattern: 'audit.*', conflict: { kind: 'skip' }, pos },
          ],
          sequences: [{ seq: { schema: 'public', name: 'ids' }, pos }],
        },
      ],
    ]),
    syncs: new Map([['s1', s]]),
  };
}

function state(db: string, o: Partial<DatabaseState> = {}): DatabaseState {
  return {
    database: db,
    registered: true,
    runSeq: 3,
    snapshots: { a: '10:10:', b: '20:20:' },
    relations: [
      {
        tableId: 'abc',
        schema: 'public',
        name: 'items',
        keyColumns: ['id'],
        copyPending: false,
        columns: [
          { name: 'id', type: 'integer' },
          { name: 'name', type: 'text' },
        ],
      },
    ],
    sequences: { [seqKey({ schema: 'public', name: 'ids' })]: '5' },
    systemIdentifier: '7000000000000000001',
    recordedSystemIdentifier: null,
    ...o,
  };
}

test('context: databases in order, per-table strategy overrides, stable lock keys', () => {
  const ctx = makeSyncContext(topo(), 's1');
  assert.deepEqual(
    ctx.databases.map((d) => d.name),
    ['a', 'b', 'c'],
  );
  assert.equal(ctx.strategyFor('public', 'items').kind, 'latest');
  assert.equal(ctx.strategyFor('audit', 'log').kind, 'skip');
  assert.deepEqual(syncLockKey('main', 's1'), syncLockKey('main', 's1'));
  assert.notDeepEqual(syncLockKey('main', 's1'), syncLockKey('main', 's2'));
  assert.ok(syncLockKey('main', 's1')[1] >= 0);
  assert.throws(() => makeSyncContext(topo(), 'nope'), /sync nope is not in bucardo.yaml/);
  assert.ok(globMatch('public.audit_*', 'public.audit_2024') && !globMatch('public.a?', 'public.abc') && globMatch('a.b', 'a.b') && !globMatch('a.b', 'axb'));
});

test('run scope: resumes from the lowest run_seq, brings sequences up, due onetimecopies', () => {
  const ctx = makeSyncContext(topo(), 's1');
  const rel = state('a').relations[0];
  const states = new Map([
    ['a', state('a', { sequences: { [seqKey({ schema: 'public', name: 'ids' })]: '9' } })],
    ['b', state('b', { runSeq: 2, snapshots: { a: '5:5:', b: '6:6:' } })],
    ['c', state('c', { relations: [{ ...rel, copyPending: true }], sequences: { [seqKey({ schema: 'public', name: 'ids' })]: null } })],
  ]);
  const scope = makeRunScope(ctx, states);
  assert.deepEqual(scope.last, { a: '5:5:', b: '6:6:' });
  assert.equal(scope.lastSeq, 2);
  assert.deepEqual(scope.tables[0].copyInto, ['c']);
  assert.deepEqual(scope.tables[0].columns, ['id', 'name']);
  assert.deepEqual(scope.setvals.get('b'), [['public', 'ids', '9']]);
  assert.deepEqual(scope.setvals.get('c'), [['public', 'ids', '9']]);
  assert.equal(scope.setvals.get('a'), undefined);
  // the next run is numbered above every database, whichever is lowest
  assert.equal(scope.nextSeq, 4);
  assert.deepEqual(
    [...scope.expectedSeq],
    [
      ['a', 3],
      ['b', 2],
      ['c', 3],
    ],
  );
  // a database that never ran (it joined the sync): everything pending, and still max + 1,
  // so that a run that commits on it but not on b leaves b the lowest
  states.set('c', state('c', { runSeq: 0, snapshots: {} }));
  const joined = makeRunScope(ctx, states);
  assert.deepEqual(joined.last, {});
  assert.equal(joined.nextSeq, 4);
});

test('run scope: strict reports a missing column; strict false copies the common columns', () => {
  const rel = state('a').relations[0];
  const narrow = { ...rel, columns: [{ name: 'id', type: 'integer' }] };
  const states = new Map([
    ['a', state('a')],
    ['b', state('b')],
    ['c', state('c', { relations: [narrow] })],
  ]);
  assert.throws(() => makeRunScope(makeSyncContext(topo(), 's1'), states), /table public.items in database c lacks column "name"/);
  assert.deepEqual(makeRunScope(makeSyncContext(topo({ strict: false }), 's1'), states).tables[0].columns, ['id']);
  states.set('c', state('c', { registered: false }));
  assert.throws(() => makeRunScope(makeSyncContext(topo(), 's1'), states), /not registered in database c/);
});

test('log lines: text and JSON', () => {
  const now = new Date('2026-01-01T00:00:00Z');
  const result = {
    sync: 's1',
    runId: 'r',
    wrote: true,
    rowsByTable: { 'public.items': 3 },
    rows: 3,
    conflicts: 1,
    started: now,
    finished: new Date(now.getTime() + 12),
    copied: [],
  };
  assert.equal(
    formatLog({ event: 'run', level: 'info', result }, 'text', now),
    '2026-01-01T00:00:00.000Z INFO  run sync=s1 rows=3 (public.items=3) conflicts=1 duration=12ms run_id=r',
  );
  const j = JSON.parse(formatLog({ event: 'run', level: 'info', result }, 'json', now));
  assert.equal(j.duration_ms, 12);
  assert.deepEqual(j.rows_by_table, { 'public.items': 3 });
});

test('retryable failures and backoff', () => {
  assert.ok(isRetryable(Object.assign(new Error('x'), { code: SQLSTATE.admin_shutdown })));
  assert.ok(isRetryable(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })));
  assert.ok(isRetryable(new BucardoError('unreachable', 'cannot connect')));
  assert.ok(isRetryable(new Error('wrapped', { cause: Object.assign(new Error('y'), { code: SQLSTATE.serialization_failure }) })));
  assert.ok(!isRetryable(Object.assign(new Error('x'), { code: SQLSTATE.undefined_table })));
  assert.ok(!isRetryable(new BucardoError('conflict_abort', 'abort')));
  for (let i = 1; i < 20; i++) assert.ok(backoffMs(i) <= 39_000 && backoffMs(i) >= 350);
});

test('kick payloads are told apart from capture payloads', () => {
  assert.deepEqual(parseKickPayload(kickPayload('s1', 'x')), { sync: 's1', id: 'x' });
  assert.equal(parseKickPayload('0123456789ab'), null);
  assert.equal(parseKickPayload('{bad'), null);
});

test('metrics render in the Prometheus text format', async () => {
  const m = new Metrics();
  const now = new Date();
  m.record('s"1', { sync: 's"1', runId: 'r', wrote: true, rowsByTable: {}, rows: 5, conflicts: 2, started: now, finished: now, copied: [] }, null);
  m.record('s"1', null, new Error('x'));
  m.setPending('a', new Map([['s"1', { n: 3, lag: 2 }]]));
  const text = await m.render();
  assert.match(text, /bucardo_rows_total\{sync="s\\"1"\} 5/);
  assert.match(text, /bucardo_errors_total\{sync="s\\"1"\} 1/);
  // lag and pending are per sync and source database
  assert.match(text, /bucardo_lag_seconds\{sync="s\\"1",database="a"\} 2/);
  assert.match(text, /bucardo_pending_changes\{sync="s\\"1",database="a"\} 3/);
});

test('deferred work: a failure is reported, and closeAll waits for the work', async () => {
  const seen: unknown[] = [];
  const conns = new SyncConnections('s1', (e) => seen.push(e));
  let done = false;
  conns.defer(
    new Promise((resolve) =>
      setTimeout(() => {
        done = true;
        resolve(null);
      }, 20),
    ),
  );
  conns.defer(Promise.reject(new Error('purge failed')));
  await conns.closeAll();
  assert.equal(done, true, 'closeAll returned before the deferred work ended');
  assert.deepEqual(
    seen.map((e) => (e as Error).message),
    ['purge failed'],
  );
  const line = formatLog({ event: 'maintenance_failed', level: 'warn', sync: 's1', error: 'purge failed' }, 'text', new Date('2026-01-01T00:00:00Z'));
  assert.equal(line, '2026-01-01T00:00:00.000Z WARN  maintenance sync=s1: purge failed (the next run does it again)');
});

test('a runner names itself in application_name as far as 63 bytes allow, never a cut host name; status reads it back', () => {
  const who = { host: 'runner-7d9f', pid: 4242 };
  assert.equal(runnerAppName('s1', 'write', who), 'bucardo:s1:write:4242@runner-7d9f');
  assert.deepEqual(parseRunnerAppName(runnerAppName('s1', 'write', who)), who);
  // a 40-character sync name (the longest a topology allows) leaves room for the pid only
  const long = 'a'.repeat(40);
  assert.equal(runnerAppName(long, 'maintain', who), `bucardo:${long}:maintain:4242`);
  assert.deepEqual(parseRunnerAppName(`bucardo:${long}:maintain:4242`), { host: null, pid: 4242 });
  assert.equal(runnerAppName(long, 'maintain', { host: 'h', pid: 1234567 }), `bucardo:${long}:maintain`);
  for (const n of [runnerAppName(long, 'maintain', who), runnerAppName('s1', 'read', { host: 'x'.repeat(80), pid: 1 })])
    assert.ok(Buffer.byteLength(n) <= 63, n);
  // sessions that name no runner: older runners, status itself, an application
  for (const n of ['bucardo:s1:write', 'bucardo:status', 'psql', 'bucardo:s1:write:abc']) assert.equal(parseRunnerAppName(n), null, n);
});
